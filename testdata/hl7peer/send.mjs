// send.mjs — sends HL7 v2 messages over MLLP with @medplum/hl7's Hl7Client, one at a
// time, waiting for each acknowledgement, as an interface engine does; prints one JSON
// line per message: {"control_id", "ack", "text", "error_location"}.
//
//   node send.mjs --port 2575 [--host 127.0.0.1] [--encoding latin1] messages.hl7
//
// Messages in the file each start with MSH; segments end in \r or \n.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';

const { values, positionals } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    encoding: { type: 'string', default: 'utf-8' },
    timeout: { type: 'string', default: '20000' },
  },
  allowPositionals: true,
});
if (!values.port || positionals.length !== 1) {
  console.error('usage: node send.mjs --port PORT [--host HOST] [--encoding ENC] FILE');
  process.exit(2);
}
const encoding = values.encoding === 'utf-8' ? 'utf-8' : values.encoding;
const text = readFileSync(positionals[0], encoding === 'utf-8' ? 'utf8' : 'latin1');
const messages = [];
for (const seg of text.split(/\r\n|\r|\n/)) {
  if (seg.trim() === '') continue;
  if (seg.startsWith('MSH')) messages.push([]);
  messages[messages.length - 1].push(seg);
}

const client = new Hl7Client({ host: values.host, port: Number(values.port), encoding, keepAlive: true });
let failed = false;
try {
  for (const segs of messages) {
    const msg = Hl7Message.parse(segs.join('\r'));
    const field = (seg, n) => seg?.getField(n)?.toString() ?? '';
    const controlId = field(msg.getSegment('MSH'), 10);
    const ack = await client.sendAndWait(msg, { timeoutMs: Number(values.timeout) });
    const msa = ack.getSegment('MSA');
    const err = ack.getSegment('ERR');
    console.log(JSON.stringify({
      control_id: controlId,
      ack: field(msa, 1),
      acked_id: field(msa, 2),
      text: field(msa, 3),
      error_location: field(err, 2),
    }));
  }
} catch (e) {
  console.error('send:', e.message);
  failed = true;
} finally {
  await client.close();
}
process.exit(failed ? 1 : 0);
