/**
 * The built-in function plugins, listed explicitly (no directory scanning): what ships
 * with the worker is visible here at a glance. More come from `[worker] plugins`.
 */
import type { Plugin } from '../core/runtime/plugin.js';
import { slackPlugin } from './slack/index.js';

export const builtinPlugins: Plugin<any, any>[] = [slackPlugin];
