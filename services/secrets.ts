/**
 * The secrets this agent holds (JIT config, registration token, cache token) and
 * the one redaction every output path goes through: the agent's log, CloudWatch,
 * telemetry and error texts.
 */
export const REDACTED = '***';

/** Shorter values are not treated as secrets: masking "1" everywhere would destroy the logs. */
const MIN_SECRET_LENGTH = 6;

export class SecretVault {
  private readonly values = new Map<string, string>();
  /** Built once per change of the secrets, not on every line: `redact` runs for every line of the job's output. */
  private pattern: RegExp | undefined;
  private secrets: string[] | undefined;
  private longestLength: number | undefined;

  set(name: string, value: string | undefined): void {
    if (!value) return;
    this.values.set(name, value);
    this.pattern = undefined;
    this.secrets = undefined;
    this.longestLength = undefined;
  }

  get(name: string): string | undefined {
    return this.values.get(name);
  }

  /** Every way a secret may appear in text: as is, and base64-decoded parts of a JIT config. */
  list(): string[] {
    return [...this.current()];
  }

  /** Longest secret length, so that a streaming redactor knows how much text to hold back. */
  get longest(): number {
    this.longestLength ??= Math.max(0, ...this.current().map((s) => s.length));
    return this.longestLength;
  }

  redact(text: string): string {
    if (this.pattern === undefined) {
      const secrets = this.current();
      if (secrets.length === 0) return text;
      this.pattern = this.build([...secrets]);
    }
    return text.replace(this.pattern, REDACTED);
  }

  private current(): readonly string[] {
    this.secrets ??= [...this.values.values()].filter((v) => v.length >= MIN_SECRET_LENGTH);
    return this.secrets;
  }

  private build(secrets: string[]): RegExp {
    return new RegExp(
      secrets
        .sort((a, b) => b.length - a.length)
        .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('|'),
      'g',
    );
  }
}
