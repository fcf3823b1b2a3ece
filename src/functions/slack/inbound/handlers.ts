/**
 * The handler sets every recorded Slack envelope is routed to (see router.ts).
 *
 * Each inbound feature adds its one set here: mirroring (message → note), asks
 * (`ask:` buttons), triage (`triage:` buttons and the close modal) and commands
 * (`app_mention`, the slash command). An envelope nothing handles is acknowledged, logged
 * at debug and takes no effect. Tests may put a set of their own first.
 */
import { askHandlers } from '../ask/ask-answer.js';
import { TRIAGE_HANDLERS } from '../triage/actions.js';
import { COMMAND_HANDLERS } from './commands/handlers.js';
import { MIRROR_HANDLERS } from './mirror.js';
import type { InboundHandlers } from './router.js';

export const INBOUND_HANDLER_SETS: InboundHandlers[] = [MIRROR_HANDLERS, askHandlers((ctx) => ctx.state.asks), TRIAGE_HANDLERS, COMMAND_HANDLERS];
