/** `cutover codec-server`: the codec server in the foreground until Ctrl-C. */
import { UserError } from '../core/errors';
import { untilInterrupted } from '../stack/stack';
import { AesGcmCodec } from './codec';
import { loadCodecKeys } from './keys';
import { type CodecServerSettings, startCodecServer } from './server';

export interface CodecServerFlags {
  host: string;
  port: string;
  origin: string[];
  token?: string;
  jwks?: string;
  issuer?: string;
  audience?: string;
  claim: string;
  allow?: string[];
  localUi?: boolean;
}

/** The flags as settings (checked by startCodecServer's schema); CUTOVER_CODEC_SERVER_TOKEN when no other mode is named. */
export function settingsFromFlags(flags: CodecServerFlags, env: NodeJS.ProcessEnv = process.env): CodecServerSettings {
  const jwt = flags.jwks || flags.issuer || flags.allow;
  const token = flags.token ?? (jwt || flags.localUi ? undefined : env.CUTOVER_CODEC_SERVER_TOKEN);
  return {
    host: flags.host,
    port: flags.port,
    origins: flags.origin,
    localUi: Boolean(flags.localUi),
    ...(token ? { token } : {}),
    ...(jwt ? { jwt: { jwks: flags.jwks ?? '', issuer: flags.issuer ?? '', claim: flags.claim, allow: flags.allow ?? [], ...(flags.audience ? { audience: flags.audience } : {}) } } : {}),
  };
}

export async function serveCodec(settings: CodecServerSettings): Promise<void> {
  const keys = loadCodecKeys();
  if (!keys) throw new UserError('the codec server decodes with the workers\' keys: set CUTOVER_CODEC_KEYS (see README, Encryption)');
  const server = await startCodecServer(settings, new AesGcmCodec(keys));
  console.log(`codec server at ${server.url} (keys ${keys.map((key) => key.id).join(', ')}; origins ${settings.origins.join(', ')})`);
  console.log(`Web UI: Codec Server endpoint ${server.url} (or temporal server start-dev --ui-codec-endpoint ${server.url})`);
  await untilInterrupted();
  await server.close();
}
