// placeholder, replaced below
import type { Hosts } from './systems.js';
export interface Wan { hosts: Hosts; setLoss(pct: number): Promise<void>; destroy(): Promise<void> }
export async function createWan(): Promise<Wan> { throw new Error('WAN not implemented yet'); }
