// Parses Mermaid diagrams with Mermaid's own parser, for tests/show/mermaid.rs.
// Reads a JSON array of {name, text} on stdin; writes one JSON object per
// diagram on stdout: {name, ok, error} and, for sequence diagrams, the
// messages' texts and the participants' labels as Mermaid read them, with
// its entities (#59; and the like) decoded.
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

// Mermaid replaces #59; by a placeholder before parsing, and the
// placeholder by the character when it draws: do the drawing's part.
const named = { lt: '<', gt: '>', amp: '&', quot: '"', nbsp: '\u00a0' };
const decode = (text) =>
  text
    .replace(/ﬂ°°(\d+)¶ß/g, (_, code) => String.fromCodePoint(Number(code)))
    .replace(/ﬂ°(\w+)¶ß/g, (_, name) => named[name] ?? `&${name};`);

let input = '';
for await (const chunk of process.stdin) input += chunk;
for (const { name, text } of JSON.parse(input)) {
  const result = { name, ok: true };
  try {
    await mermaid.parse(text);
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    if (diagram.db.getMessages) {
      result.messages = diagram.db.getMessages().map((m) => decode(m.message ?? ''));
      result.actors = [...diagram.db.getActors().values()].map((a) => decode(a.description));
    }
  } catch (error) {
    result.ok = false;
    result.error = String(error.message ?? error).split('\n').slice(0, 4).join(' | ');
  }
  console.log(JSON.stringify(result));
}
