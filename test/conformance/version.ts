// The server's Kubernetes version (from /version) and what the suite expects of it: behaviour that
// came in a later release is skipped with a message naming that release, and expectations whose
// wording changed are picked by version range.

export interface KubeVersion {
  major: number;
  minor: number;
  /** gitVersion without the leading `v`, e.g. `1.20.2` or `1.32.0-devcluster`, for messages. */
  text: string;
}

/** Reads /version's major and minor (`"20+"` on some distributions counts as 20). */
export function parseVersion(body: { major?: string; minor?: string; gitVersion?: string }): KubeVersion {
  const major = Number.parseInt(body.major ?? '', 10);
  const minor = Number.parseInt(body.minor ?? '', 10);
  if (Number.isNaN(major) || Number.isNaN(minor))
    throw new Error(`/version has no numeric major and minor: ${JSON.stringify(body)}`);
  const text = (body.gitVersion ?? `v${major}.${minor}`).replace(/^v/, '');
  return { major, minor, text };
}

function parseRelease(release: string): [number, number] {
  const match = /^(\d+)\.(\d+)$/.exec(release);
  if (!match) throw new Error(`a release is written major.minor, not ${JSON.stringify(release)}`);
  return [Number(match[1]), Number(match[2])];
}

/** Whether the server is `release` (major.minor) or newer. */
export function atLeast(version: KubeVersion, release: string): boolean {
  const [major, minor] = parseRelease(release);
  return version.major > major || (version.major === major && version.minor >= minor);
}

/** The skip message when `feature` came in after the server's version; undefined when it has it. */
export function missing(version: KubeVersion, feature: string, release: string): string | undefined {
  return atLeast(version, release)
    ? undefined
    : `${feature} needs Kubernetes ${release}; server is ${version.text}`;
}

/**
 * The expectation for the server's version from `{ before, since, from }`: `before` on servers older
 * than `since`, `from` on `since` and newer.
 */
export function byVersion<T>(version: KubeVersion, since: string, expectations: { before: T; from: T }): T {
  return atLeast(version, since) ? expectations.from : expectations.before;
}
