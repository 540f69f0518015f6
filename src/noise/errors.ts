/** Every failure of the Noise layer: misuse, bad input, failed authentication. */
export class NoiseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoiseError';
  }
}
