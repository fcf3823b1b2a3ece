/**
 * The handler sets every recorded Slack envelope is routed to (see router.ts).
 *
 * Each inbound feature adds its one set here: mirroring (message → note), asks
 * (`ask:` buttons), triage (`triage:` buttons and the close modal) and commands
 * (`app_mention`, the slash command). The list starts empty: an envelope nothing handles
 * is acknowledged, logged at debug and takes no effect. Tests may push a set of their own.
 */
import { MIRROR_HANDLERS } from './mirror.js';
import type { InboundHandlers } from './router.js';

export const INBOUND_HANDLER_SETS: InboundHandlers[] = [MIRROR_HANDLERS];
