// MPyC's wire format, as read from its source (docs/mpyc-pattern.md §3–§5).
//
// greeting (client → server, once, first bytes of the connection):
//   pid:u16le | prssKey[16] * k        k = prssKeyCount(m, t, client, server)
// message (both directions, after the greeting):
//   pc:i64le | payloadSize:u32le | payload[payloadSize]
// No magic, no checksum: the receiver matches messages by pc, not by arrival order.
// Parsers here are length-checked and report malformed input as a value, never by throwing.

export const PID_BYTES = 2;
export const PRSS_KEY_BYTES = 16;
export const HEADER_BYTES = 12; // pc (8) + payloadSize (4)
export const MPYC_DEFAULT_BASE = 11365;
/** MPyC's connect retry interval: `await asyncio.sleep(0.1)` in Runtime.start() */
export const MPYC_RETRY_MS = 100;

/** MPyC's default threshold, `(m-1)//2`. */
export function defaultThreshold(m: number): number {
  return Math.floor((m - 1) / 2);
}

/**
 * Number of 16-byte PRSS keys the client sends the server: the subsets S of
 * combinations(range(m), m-t) with S[0] == client and server in S (Runtime._prss_keys_to_peer).
 * S[0] == client means S = {client} ∪ (m-t-1 elements of the indices above client),
 * and server > client must be one of them: C(m-client-2, m-t-2).
 */
export function prssKeyCount(m: number, t: number, client: number, server: number): number {
  const size = m - t;
  if (server <= client || size < 2) return 0;
  return binomial(m - client - 2, size - 2);
}

function binomial(n: number, k: number): number {
  if (k < 0 || n < 0 || k > n) return 0;
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

export function encodeGreeting(pid: number, keys: Uint8Array[]): Buffer {
  const out = Buffer.alloc(PID_BYTES + PRSS_KEY_BYTES * keys.length);
  out.writeUInt16LE(pid, 0);
  keys.forEach((k, i) => out.set(k, PID_BYTES + PRSS_KEY_BYTES * i));
  return out;
}

export function encodeHeader(pc: bigint, payloadSize: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeBigInt64LE(pc, 0);
  h.writeUInt32LE(payloadSize, 8);
  return h;
}

/**
 * `pickle.dumps(pid)` for 0 <= pid < 65536 exactly as CPython 3.8–3.13 writes it
 * (protocol 4; 3.14 writes protocol 5, byte 1 = 0x05, otherwise the same); MPyC's shutdown
 * sends this. PROTO 4, then BININT1 n (n < 256) or BININT2 n:u16le, then STOP. Pickles
 * whose opcodes after PROTO take 4 bytes or more are framed: FRAME (0x95) + length:u64le.
 *   pickle.dumps(1)   = 80 04 4b 01 2e
 *   pickle.dumps(300) = 80 04 95 04 00 00 00 00 00 00 00 4d 2c 01 2e
 */
export function picklePid(pid: number): Buffer {
  if (pid < 256) return Buffer.from([0x80, 0x04, 0x4b, pid, 0x2e]);
  return Buffer.from([0x80, 0x04, 0x95, 0x04, 0, 0, 0, 0, 0, 0, 0, 0x4d, pid & 0xff, pid >> 8, 0x2e]);
}

/**
 * Accumulates a TCP byte stream and hands out exact-length pieces. Chunks are kept as
 * received and joined only when a read spans them, so a bulk message costs one copy.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // consumed bytes of chunks[0]
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /** Returns the next n bytes, or null (and consumes nothing) if fewer are queued. */
  read(n: number): Buffer | null {
    if (n > this.length) return null;
    const out = this.peekCopy(n);
    this.skip(n);
    return out;
  }

  private peekCopy(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    let idx = 0;
    let off = this.head;
    while (got < n) {
      const c = this.chunks[idx++]!;
      const take = Math.min(n - got, c.length - off);
      c.copy(out, got, off, off + take);
      got += take;
      off = 0;
    }
    return out;
  }

  private skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      const avail = c.length - this.head;
      if (n < avail) { this.head += n; return; }
      n -= avail;
      this.chunks.shift();
      this.head = 0;
    }
  }
}

export interface FrameHeader { pc: bigint; payloadSize: number }

export function parseHeader(b: Buffer): FrameHeader | null {
  if (b.length < HEADER_BYTES) return null;
  return { pc: b.readBigInt64LE(0), payloadSize: b.readUInt32LE(8) };
}
