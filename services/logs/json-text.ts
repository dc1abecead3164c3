/**
 * Whether a text is its own JSON string body: printable ASCII without `"` or `\`. Both places a
 * runner line is encoded as JSON (the stdout echo and the CloudWatch queue) ask this of the same
 * line, one after the other: the answer for the last text asked is kept, so a line is scanned
 * once (in a log flood, a scan per line per place was a tenth of the agent's CPU).
 */
const NEEDS_ESCAPING = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;

let lastText: string | undefined;
let lastPlain = false;

export function isPlainJsonText(text: string): boolean {
  if (text !== lastText) {
    lastText = text;
    lastPlain = !NEEDS_ESCAPING.test(text);
  }
  return lastPlain;
}
