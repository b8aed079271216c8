/**
 * Posts one notification to one webhook. The body comes built from the workflow (core/notify.ts); the URL is a
 * secret reference the plan names, resolved here, right before use, and hidden again in every error that goes back
 * to Temporal. Temporal retries what may pass on a later try (a refused connection, a 5xx, a 429); the workflow
 * bounds the retries and never waits on them between phases (workflows/notify.ts).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { z } from 'zod';
import { type ResolvedSecret, redact } from '../core/secrets';
import { resolveSecret } from '../transport/secrets';

export interface NotifyRequest {
  /** The target's name in the plan, for messages. */
  target: string;
  /** The webhook's URL by reference: env:NAME or file:/path on this worker. */
  url: string;
  body: unknown;
}

/** One try may take this long: a webhook that accepts the connection and never answers is a failed try. */
const TRY_TIMEOUT_MS = 10_000;
/** Enough of a refusal's body to say why (Slack answers "invalid_payload", "no_service"). */
const ANSWER_CHARS = 200;

const WebhookUrl = z.url({ protocol: /^https?$/, error: 'not an http:// or https:// URL' });

/**
 * What an error must not show: the URL, and its path and query on their own (a Slack webhook's secret is its path,
 * which a refusing server may echo). A path as short as "/hook" hides nothing and would blot out words.
 */
function hiddenParts(secret: ResolvedSecret, url: URL): ResolvedSecret[] {
  const path = `${url.pathname}${url.search}`;
  return [secret, { ref: secret.ref, value: url.href }, ...(path.length >= 8 ? [{ ref: secret.ref, value: path }] : [])];
}

/** Statuses a later try may not get again: the server is busy, or timed out, or broke. */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function createNotifyActivities() {
  return {
    async sendNotification(request: NotifyRequest): Promise<{ status: number }> {
      let secret: ResolvedSecret;
      try {
        secret = await resolveSecret(request.url);
      } catch (error) {
        throw ApplicationFailure.nonRetryable(`notify target ${request.target}: ${(error as Error).message}`, 'NotifyTargetUnavailable');
      }
      // The value is a credential: a refusal names the reference, never what it holds.
      const url = WebhookUrl.safeParse(secret.value.trim());
      if (!url.success) throw ApplicationFailure.nonRetryable(`notify target ${request.target}: ${request.url} holds ${z.prettifyError(url.error).replace(/^✖ /, '')}`, 'NotifyTargetUnavailable');
      const hidden = hiddenParts(secret, new URL(url.data));
      let response: Response;
      try {
        response = await fetch(url.data, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(request.body),
          signal: AbortSignal.any([Context.current().cancellationSignal, AbortSignal.timeout(TRY_TIMEOUT_MS)]),
        });
      } catch (error) {
        const cause = (error as Error & { cause?: Error }).cause;
        throw ApplicationFailure.retryable(redact(`notify target ${request.target}: ${(error as Error).message}${cause ? ` (${cause.message})` : ''}`, hidden), 'NotifyFailed');
      }
      if (response.ok) return { status: response.status };
      // Hidden before it is cut: a secret cut in half would no longer be found.
      const answer = redact(await response.text().catch(() => ''), hidden).slice(0, ANSWER_CHARS);
      const message = `notify target ${request.target}: HTTP ${response.status}${answer ? `: ${answer}` : ''}`;
      throw retryable(response.status) ? ApplicationFailure.retryable(message, 'NotifyFailed') : ApplicationFailure.nonRetryable(message, 'NotifyRefused');
    },
  };
}
