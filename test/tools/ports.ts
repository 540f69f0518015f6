// A base port with n consecutive free loopback ports, for tests that need MPyC's layout.
import { freeBases } from '../../src/common/ports.js';

export async function freeBase(n: number): Promise<number> {
  return (await freeBases(1, n))[0]!;
}
