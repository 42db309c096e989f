/**
 * The organization's live stream over the tab's WebSocket. Reconnects resume from the last stored
 * event delivered (shared/live-resume.ts: wsLink alone would resume from "now" when the last event
 * before a drop was a presence or usage event); when the subscription itself fails (e.g. the server
 * restarted mid-way), we start it again from the last id we saw.
 */
import type { LiveEvent } from '../../../shared/events.js';
import { resumingLiveSubscription, type ResumingSubscription } from '../../../shared/live-resume.js';
import { api, errorCode } from '../api.js';

export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'ended';

export interface LiveHandlers {
  onEvent(event: LiveEvent): void;
  onStatus(status: LiveStatus): void;
  /** The server refused the stream: signed out (UNAUTHORIZED) or no longer a member (NOT_FOUND). */
  onRefused(code: 'UNAUTHORIZED' | 'NOT_FOUND'): void;
}

export function subscribeToOrganization(orgId: string, handlers: LiveHandlers): () => void {
  let lastEventId: string | null = null;
  let stopped = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let attempt = 0;
  let subscription: ResumingSubscription | null = null;

  const start = () => {
    if (stopped) return;
    handlers.onStatus(attempt === 0 ? 'connecting' : 'reconnecting');
    subscription = resumingLiveSubscription(
      (from, callbacks) => api.live.organization.subscribe({ orgId, lastEventId: from }, callbacks),
      lastEventId,
      {
        onStarted() {
          attempt = 0;
          handlers.onStatus('live');
        },
        onEvent(event, id) {
          if (id !== undefined) lastEventId = id;
          handlers.onEvent(event);
        },
        onConnectionStateChange(state) {
          if (stopped) return;
          if (state.state === 'connecting') handlers.onStatus('reconnecting');
          else if (state.state === 'pending') handlers.onStatus('live');
        },
        onError(err) {
          if (stopped) return;
          const code = errorCode(err);
          if (code === 'UNAUTHORIZED' || code === 'NOT_FOUND') {
            handlers.onStatus('ended');
            handlers.onRefused(code);
            return;
          }
          handlers.onStatus('reconnecting');
          attempt++;
          retryTimer = setTimeout(start, Math.min(1000 * 2 ** attempt, 15_000));
        },
        onStopped() {
          if (!stopped) handlers.onStatus('ended');
        },
      },
    );
  };

  start();
  return () => {
    stopped = true;
    clearTimeout(retryTimer);
    subscription?.unsubscribe();
  };
}
