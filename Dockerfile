# syntax=docker/dockerfile:1
# One image for the controller and the node agent (`plugin-release controller|agent ...`). It runs the
# build of the sources (scripts/build.ts: src/ and bin/ compiled to minified JavaScript), not the TypeScript:
# Node's type stripping would cost every process about 18 MB (docs/benchmarks.md, footprint).
# Build: docker build -t ghcr.io/plugin-release/plugin-release:0.1.0 .   (docs/operations.md)
ARG NODE_IMAGE=node:24-bookworm-slim

# Production dependencies only, exactly as the lockfile pins them. No install scripts: none of the
# production dependencies needs one (protobufjs's only prints a version warning).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# The build, with the dev dependencies (rolldown); the same script `npm run build`, the image test
# and the memory bench run. No install scripts: the `node` dev dependency's would download a second Node.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.ts ./scripts/
COPY bin ./bin
COPY src ./src
COPY crds ./crds
RUN node scripts/build.ts /build

# The runtime: the slim Node image without its package managers, the built tree, the production
# dependencies, and a non-root user.
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="plugin-release" \
      org.opencontainers.image.description="Kubernetes controller and node agent that roll plugins out with try-activate" \
      org.opencontainers.image.licenses="Apache-2.0"
# npm, npx, corepack and yarn are build tools: nothing at run time needs them, so they are not shipped.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /build ./
RUN ln -s /app/bin/plugin-release.js /usr/local/bin/plugin-release
# The controller runs as this user. The agent DaemonSet overrides it with root (hostPath ownership and
# process.runAsUser need it; deploy/agent/daemonset.yaml says why) and drops every other capability.
USER 65532:65532
ENTRYPOINT ["plugin-release"]
CMD ["--help"]
