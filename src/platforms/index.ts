/**
 * The platforms the worker knows, for the commands that list them: core's config
 * writer is handed these sections (by cli.ts) instead of importing a platform itself.
 * `local` keeps everything under `[worker]` and has no section of its own.
 */
import type { PlatformConfigSection } from '../core/commands/config-writer.js';
import { SOAR_CONFIG_SECTION } from './soar/soar-config.js';

export const PLATFORM_CONFIG_SECTIONS: readonly PlatformConfigSection[] = [SOAR_CONFIG_SECTION];
