// The pluginrelease.io/v1alpha1 API: schemas, types, constants and the revision hash.
export * from './conditions.ts';
export * from './group.ts';
export * from './pluginactivation.ts';
export * from './pluginrelease.ts';
export * from './primitives.ts';
export * from './revision.ts';
export * from './validate.ts';
