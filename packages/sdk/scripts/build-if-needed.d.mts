/** Builds dist/ unless it is newer than every source and config file; false when the build failed. */
export function buildIfNeeded(options?: { force?: boolean; quiet?: boolean }): boolean
