// API group identity, kinds, and the well-known labels and annotations of pluginrelease.io.

export const GROUP = 'pluginrelease.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const Kinds = {
  PluginRelease: {
    kind: 'PluginRelease',
    plural: 'pluginreleases',
    singular: 'pluginrelease',
    shortNames: ['plr'],
  },
  PluginActivation: {
    kind: 'PluginActivation',
    plural: 'pluginactivations',
    singular: 'pluginactivation',
    shortNames: ['pla'],
  },
} as const;

/**
 * The category both kinds share (`kubectl get pluginreleases-all`). It must not equal a resource's
 * name: kubectl expands categories before names, so a category `pluginrelease` would turn
 * `kubectl get pluginrelease NAME` into a get of both kinds.
 */
export const CATEGORY = 'pluginreleases-all';

export const Labels = {
  /** Set by the controller on every PluginActivation: the node whose agent executes it. */
  node: `${GROUP}/node`,
  /** Set by the controller on every PluginActivation: the owning PluginRelease's name. */
  release: `${GROUP}/release`,
  /** Set by the controller on every PluginActivation: the plugin name. */
  plugin: `${GROUP}/plugin`,
} as const;

export const Annotations = {
  /** Any new value retries the current revision after a failure, without editing the spec. */
  retryAt: `${GROUP}/retry-at`,
  /** Set by the controller on a PluginActivation when it starts an attempt: the progress deadline's origin. */
  startedAt: `${GROUP}/started-at`,
  /**
   * Set to a revision (`kubectl pluginrelease promote`): a rollout paused after its canaries continues
   * while it names the revision being rolled out. Metadata, not spec, so GitOps tools leave it alone.
   */
  promote: `${GROUP}/promote`,
  /**
   * Set to a revision (`kubectl pluginrelease abort`): while it names the revision being rolled out, the
   * rollout starts nothing and every node it touched returns to the revision it served before.
   */
  abort: `${GROUP}/abort`,
} as const;

export const Finalizers = {
  /**
   * Set by the controller on each PluginActivation it creates, and removed by it once the node's agent
   * reported the plugin uninstalled (condition Uninstalled: process stopped, front closed, attempt
   * cancelled), or once the activation's Node is gone.
   */
  agent: `${GROUP}/agent`,
} as const;
