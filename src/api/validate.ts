// Turning zod issues into the one-line, field-naming messages users see in conditions and CLIs.
import type { z } from 'zod';

/** `spec.artifact.digest: must be "sha256:" followed by 64 lowercase hex digits; …` */
export function formatIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}
