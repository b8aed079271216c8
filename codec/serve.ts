/** `cutover codec-server`: the codec server in the foreground until Ctrl-C. */
import { UserError } from '../core/errors';
import { untilInterrupted } from '../stack/stack';
import { AesGcmCodec } from './codec';
import { loadCodecKeys } from './keys';
import { type CodecServerSettings, startCodecServer } from './server';

export async function serveCodec(settings: CodecServerSettings): Promise<void> {
  const keys = loadCodecKeys();
  if (!keys) throw new UserError('the codec server decodes with the workers\' keys: set CUTOVER_CODEC_KEYS (see README, Encryption)');
  const server = await startCodecServer(settings, new AesGcmCodec(keys));
  console.log(`codec server at ${server.url} (keys ${keys.map((key) => key.id).join(', ')}; origins ${settings.origins.join(', ')})`);
  console.log(`Web UI: Codec Server endpoint ${server.url} (or temporal server start-dev --ui-codec-endpoint ${server.url})`);
  await untilInterrupted();
  await server.close();
}
