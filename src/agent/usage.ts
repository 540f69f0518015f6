// The synopsis of every mpyc-agent command, in one place: the top-level --help, each
// command's own --help and every usage error print these. Kept apart from the commands so
// the CLI entry can print them without loading any command's module.
export const DEFAULT_KEY_FILE = 'mpyc-agent.key';

export const USAGE = {
  keygen: 'mpyc-agent keygen [--out FILE] [--force]',
  pubkey: 'mpyc-agent pubkey [--key FILE]',
  session: 'mpyc-agent session create|add|show ...',
  invite: 'mpyc-agent invite create --relay ADDR --parties M [--name NAME] [--qr]',
  join: 'mpyc-agent join INVITE [--name NAME] [--key FILE] [--out FILE] [--up]',
  up: 'mpyc-agent up [SESSION] [--key FILE] [--config FILE] [options]',
  ping: 'mpyc-agent ping PARTY [--count N] [--interval SECONDS] [--json] [--control PATH | --key FILE]',
  netcheck: 'mpyc-agent netcheck [SESSION | --relay ADDR ...] [--json]',
  status: 'mpyc-agent status [--json] [--watch [--interval SECONDS]] [--control PATH | --key FILE]',
} as const;
