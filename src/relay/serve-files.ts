// The files `mpyc-relay serve` settings name, read and checked before anything listens:
// the relay key (keys.ts: mode 0600, KeyFileError), the TLS certificate and key, and the
// allow-list (allow-list.ts). Each unusable file is an InputFileError (exit 3) naming it.
import { createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import { InputFileError } from '../common/cli.js';
import { readKeyFile } from '../common/keys.js';
import type { KeyPair } from '../noise/index.js';
import { loadAllowList } from './allow-list.js';
import type { ServeSettings } from './serve-settings.js';

export interface ServeFiles {
  keyPair: KeyPair;
  tls: { cert: Buffer; key: Buffer } | undefined;
  allow: Set<string> | undefined;
}

function readTlsFile(path: string, what: string): Buffer {
  try { return readFileSync(path); } catch (err) {
    throw new InputFileError(`${path}: cannot read the TLS ${what} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

export function loadServeFiles(settings: ServeSettings): ServeFiles {
  const keyPair = readKeyFile(settings.keyPath, { keygenCommand: 'mpyc-relay keygen' });
  let tls: ServeFiles['tls'];
  if (settings.tls) {
    const { certPath, keyPath } = settings.tls;
    tls = { cert: readTlsFile(certPath, 'certificate'), key: readTlsFile(keyPath, 'key') };
    // the check https.createServer makes, so a bad pair is an input error before anything listens
    try { createSecureContext(tls); } catch (err) {
      keyPair.privateKey.fill(0);
      throw new InputFileError(`${certPath}, ${keyPath}: not a usable PEM certificate chain and its key (${(err as Error).message})`);
    }
  }
  let allow: Set<string> | undefined;
  try {
    allow = settings.allowPath !== undefined ? loadAllowList(settings.allowPath) : undefined;
  } catch (err) {
    keyPair.privateKey.fill(0);
    throw err;
  }
  return { keyPair, tls, allow };
}
