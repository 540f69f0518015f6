// A malicious party: it holds a real key of the session, registers with the session's
// relay (the real relay client) and speaks real Noise sessions (src/session's
// SessionManager) with its victim, sending directly over UDP to the victim agent's socket;
// what it carries inside them are hostile stream-transport packets built with the
// transport's own codec (src/transport/wire.ts): whatever the victim's parsers accept. The
// victim's answers arrive directly or through the relay, as the victim's path decides.
// Its packets always name destination epoch 0 ("not known yet"), so they are accepted by
// every fresh transport connection the victim starts after closing the previous one.
import * as dgram from 'node:dgram';
import { PeerKey } from '../../common/peer-key.js';
import type { KeyPair } from '../../noise/index.js';
import { SessionManager, sessionWire } from '../../session/index.js';
import { RelayClient } from '../../relay/index.js';
import { isRelayFrame } from '../../relay/wire.js';
import { decodeInner, encodeProbe, encodeTransportInner } from '../../agent/inner.js';
import { encodeTarget } from '../../agent/streams.js';
import { encodePacket, parsePacket, type Frame } from '../../transport/wire.js';
import type { Endpoint } from './raw-udp.js';

export interface MaliciousPartyOptions {
  keyPair: KeyPair;
  victimKey: PeerKey;
  /** the victim agent's UDP socket (loopback) */
  victim: Endpoint;
  /** the victim's party index: the target its MPyC streams name */
  victimIndex: number;
  /** the session's relay: UDP endpoint and public key text */
  relay: Endpoint;
  relayKey: string;
  /** this party's socket address (loopback) */
  bind: Endpoint;
}

/** where a session datagram came from or goes to: an address, or the relay */
type Route = Endpoint | 'relay';

/** what the victim sent back, as its transport saw fit */
export interface VictimFeedback {
  packets: number;
  /** CLOSE frames: the victim closed our connection (a protocol error it detected) */
  closes: number;
  closeReasons: string[];
  /** the highest MAX_STREAMS the victim granted us */
  maxStreams: number;
  /** whether the relay registered us (its answers can come that way) */
  relayRegistered: boolean;
}

const MAX_CLOSE_REASONS_KEPT = 8;

export class MaliciousParty {
  readonly feedback: VictimFeedback = { packets: 0, closes: 0, closeReasons: [], maxStreams: 0, relayRegistered: false };
  /** the first handshake initiation we sent (what an on-path observer could capture) */
  capturedInitiation?: Uint8Array;
  /** our own transport epoch and next packet number (a fresh epoch per connection attempt) */
  private epoch = randomEpoch();
  nextPn = 0;
  private readonly sessions: SessionManager<Route>;
  private readonly relay: RelayClient;
  private readonly timer: NodeJS.Timeout;
  private established?: () => void;
  readonly side: 0 | 1;

  private constructor(private readonly o: MaliciousPartyOptions, private readonly sock: dgram.Socket) {
    const own = PeerKey.fromBytes(o.keyPair.publicKey);
    this.side = own.compare(o.victimKey) < 0 ? 0 : 1;
    this.relay = new RelayClient({ relayKey: o.relayKey, keyPair: o.keyPair, transport: 'udp', sendUdp: (f) => sock.send(f, o.relay.port, o.relay.address) });
    this.relay.on('packet', (fromKey, payload) => { if (fromKey === o.victimKey.text) this.sessions.receive(new Uint8Array(payload), 'relay'); });
    this.sessions = new SessionManager<Route>({
      staticKey: o.keyPair,
      peers: [o.victimKey],
      transmit: (_peer, packet, to) => {
        if (packet[0] === sessionWire.MSG_INITIATION && !this.capturedInitiation) this.capturedInitiation = new Uint8Array(packet);
        if (to === 'relay') { this.relay.send(o.victimKey.bytes, packet); return; }
        const dst = to ?? o.victim;
        sock.send(packet, dst.port, dst.address);
      },
      deliver: (_peer, plaintext, from) => this.onPlaintext(plaintext, from),
      onEvent: (e) => { if (e.type === 'established') this.established?.(); },
    });
    sock.on('message', (m, rinfo) => {
      if (rinfo.port === o.relay.port && rinfo.address === o.relay.address) { if (isRelayFrame(m)) this.relay.handleDatagram(m); return; }
      if (m.length > 0 && m[0]! >= 0x10 && m[0]! <= 0x1f) this.sessions.receive(new Uint8Array(m), { address: rinfo.address, port: rinfo.port });
    });
    this.relay.start();
    this.timer = setInterval(() => { if (performance.now() >= this.sessions.nextDeadline()) this.sessions.tick(); }, 10);
  }

  static async open(o: MaliciousPartyOptions): Promise<MaliciousParty> {
    const sock = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
    await new Promise<void>((res, rej) => { sock.once('error', rej); sock.bind(o.bind.port, o.bind.address, () => { sock.off('error', rej); res(); }); });
    return new MaliciousParty(o, sock);
  }

  /**
   * Registers with the relay (waiting at most `registerMs`: a relay of another protocol
   * version does not register us, and the attack goes on without the relay path), then
   * completes a Noise handshake with the victim (as any party may).
   */
  async connect(timeoutMs = 10_000, registerMs = 3_000): Promise<void> {
    const t0 = performance.now();
    while (this.relay.state !== 'registered' && performance.now() - t0 < registerMs) await new Promise((r) => setTimeout(r, 10));
    this.feedback.relayRegistered = this.relay.state === 'registered';
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('malicious party: no handshake with the victim')), timeoutMs);
      this.established = () => { clearTimeout(t); this.established = undefined; resolve(); };
      this.sessions.connect(this.o.victimKey);
      if (this.sessions.info(this.o.victimKey).established) this.established();
    });
  }

  /** The MPyC stream target the victim accepts from us: its own listener. */
  get target(): Uint8Array {
    return encodeTarget({ kind: 'mpyc', party: this.o.victimIndex });
  }

  /** Stream id number k of ours (our side's parity). */
  streamId(k: number): number {
    return 2 * k + this.side;
  }

  /** Starts a new transport incarnation (a new epoch, packet numbers from 0). */
  newEpoch(): void {
    this.epoch = randomEpoch();
    this.nextPn = 0;
  }

  /** One transport packet of these frames, encrypted in our session with the victim. */
  sendFrames(frames: Frame[]): boolean {
    const packet = encodePacket({ srcEpoch: this.epoch, dstEpoch: 0, pn: this.nextPn++ }, frames);
    return this.sessions.send(this.o.victimKey, encodeTransportInner(packet));
  }

  /** Waits until the socket's send queue is empty (bounded floods yield to the kernel). */
  async drain(): Promise<void> {
    while (this.sock.getSendQueueCount() > 0) await new Promise((r) => setTimeout(r, 1));
  }

  private onPlaintext(plaintext: Uint8Array, from: Route): void {
    const inner = decodeInner(plaintext);
    // answer the victim's path probes as a real agent does, so it confirms our address as
    // a direct path and its answers (our CLOSE frames) come straight back here
    if (inner.type === 'probe') { if (from !== 'relay') this.sessions.send(this.o.victimKey, encodeProbe('probeAck', inner.id), from); return; }
    if (inner.type !== 'transport') return;
    const p = parsePacket(inner.packet);
    if (typeof p === 'string') return;
    this.feedback.packets++;
    for (const f of p.frames) {
      if (f.type === 'close') {
        this.feedback.closes++;
        if (this.feedback.closeReasons.length < MAX_CLOSE_REASONS_KEPT) this.feedback.closeReasons.push(f.reason);
      } else if (f.type === 'maxStreams') this.feedback.maxStreams = Math.max(this.feedback.maxStreams, f.max);
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.sessions.close();
    this.relay.close();
    try { this.sock.close(); } catch { /* closed */ }
  }
}

function randomEpoch(): number {
  return (crypto.getRandomValues(new Uint32Array(1))[0]! >>> 0) || 1;
}
