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
  private pattern: RegExp | undefined;

  set(name: string, value: string | undefined): void {
    if (!value) return;
    this.values.set(name, value);
    this.pattern = undefined;
  }

  get(name: string): string | undefined {
    return this.values.get(name);
  }

  /** Every way a secret may appear in text: as is, and base64-decoded parts of a JIT config. */
  list(): string[] {
    return [...this.values.values()].filter((v) => v.length >= MIN_SECRET_LENGTH);
  }

  /** Longest secret length, so that a streaming redactor knows how much text to hold back. */
  get longest(): number {
    return Math.max(0, ...this.list().map((s) => s.length));
  }

  redact(text: string): string {
    const secrets = this.list();
    if (secrets.length === 0) return text;
    this.pattern ??= new RegExp(
      secrets
        .sort((a, b) => b.length - a.length)
        .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('|'),
      'g',
    );
    return text.replace(this.pattern, REDACTED);
  }
}
