// A JSON merge patch that replaces a whole status: merge patches merge objects key by key, so every
// key the old status had and the new one lacks must be sent as null to be removed.

/** `{ status: next }`, with `null` for each top-level status field `previous` has and `next` lacks. */
export function replaceStatusPatch(
  previous: object | undefined,
  next: object,
): { status: Record<string, unknown> } {
  const removed = Object.keys(previous ?? {}).filter((k) => !(k in next));
  return { status: { ...Object.fromEntries(removed.map((k) => [k, null])), ...next } };
}
