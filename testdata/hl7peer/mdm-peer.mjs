// mdm-peer.mjs — a real HL7 v2 receiver of MDM messages for the deliver package's tests:
// @medplum/hl7's MLLP server (Hl7Server), @medplum/core's parser (Hl7Message.parse). For
// each message it prints one JSON line of what it read (below) and answers with
// @medplum/core's acknowledgement of it (buildAck): AA, or what --ack says, with --text
// as the reason in ERR-8 (ERR-2 TXA^1^12) for an error.
//
//   node mdm-peer.mjs --listen [--port N] [--ack AA|AE|AR] [--text REASON] [--log FILE] [--delay-ms N]
//       prints {"port": N} once it listens on 127.0.0.1, then a line per message
//   node mdm-peer.mjs FILE
//       reads the messages of FILE (each starts with MSH) and prints a line per message
//
// A line: the MSH fields (event, structure, control id, version, charset), PID-3 as sent
// and its components decoded (mrn, authority, id type), PID-5 decoded (family, given),
// TXA-2, TXA-3, TXA-4, TXA-12 and TXA-13 (first component, decoded), TXA-17, TXA-19,
// TXA-21, OBX-2, OBX-3, OBX-5's type, subtype and encoding, and the SHA-256 and size of
// the PDF decoded from OBX-5's Base64; pid_fields and txa_fields count the fields the
// parser found, so an unescaped delimiter shows. Decoding the escapes (\F\ \S\ \T\ \R\
// \E\) is done here: the parser splits on delimiters and leaves escapes as sent.
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Hl7Message, Hl7Segment } from '@medplum/core';
import { Hl7Server } from '@medplum/hl7';

const { values, positionals } = parseArgs({
  options: {
    listen: { type: 'boolean', default: false },
    port: { type: 'string', default: '0' },
    log: { type: 'string', default: '' },
    'delay-ms': { type: 'string', default: '0' },
    daemon: { type: 'boolean', default: false }, // run until a signal, not until stdin ends (make run)
    ack: { type: 'string', default: 'AA' },
    text: { type: 'string', default: '' },
  },
  allowPositionals: true,
});

// unescape decodes HL7 escape sequences with the message's own delimiters.
function unescape(s, ctx) {
  const e = ctx.escapeCharacter;
  const map = { F: ctx.fieldSeparator, S: ctx.componentSeparator, T: ctx.subcomponentSeparator, R: ctx.repetitionSeparator, E: e };
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== e) {
      out += s[i];
      continue;
    }
    const end = s.indexOf(e, i + 1);
    if (end < 0) {
      out += s.slice(i);
      break;
    }
    out += map[s.slice(i + 1, end)] ?? '';
    i = end;
  }
  return out;
}

function describe(msg) {
  const ctx = msg.context;
  const msh = msg.getSegment('MSH');
  const pid = msg.getSegment('PID');
  const txa = msg.getSegment('TXA');
  const obx = msg.getSegment('OBX');
  const raw = (seg, f) => seg?.getField(f)?.toString() ?? '';
  const comp = (seg, f, c, sub) => unescape(seg?.getComponent(f, c, sub) ?? '', ctx);
  const out = {
    event: msh?.getComponent(9, 2) ?? '',
    structure: msh?.getComponent(9, 3) ?? '',
    control_id: raw(msh, 10),
    version: raw(msh, 12),
    charset: raw(msh, 18),
    sending_facility: raw(msh, 4),
    pid3: raw(pid, 3),
    mrn: comp(pid, 3, 1),
    authority: [0, 1, 2].map((s) => comp(pid, 3, 4, s)).join('&').replace(/&+$/, ''),
    id_type: comp(pid, 3, 5),
    family: comp(pid, 5, 1),
    given: comp(pid, 5, 2),
    birth_date: raw(pid, 7),
    sex: raw(pid, 8),
    pid_fields: pid?.fields.length ?? 0,
    txa2: unescape(raw(txa, 2), ctx),
    txa3: raw(txa, 3),
    txa4: raw(txa, 4),
    txa12: comp(txa, 12, 1),
    txa13: comp(txa, 13, 1),
    txa17: raw(txa, 17),
    txa19: raw(txa, 19),
    txa21: unescape(raw(txa, 21), ctx),
    txa_fields: txa?.fields.length ?? 0,
    obx2: raw(obx, 2),
    obx3: raw(obx, 3),
    segments: msg.segments.map((s) => s.name),
  };
  if (obx) {
    out.obx5_type = obx.getComponent(5, 2);
    out.obx5_subtype = obx.getComponent(5, 3);
    out.obx5_encoding = obx.getComponent(5, 4);
    const pdf = Buffer.from(obx.getComponent(5, 5), 'base64');
    out.pdf_sha256 = createHash('sha256').update(pdf).digest('hex');
    out.pdf_size = pdf.length;
  }
  return out;
}

if (values.listen) {
  // The receiver's duplicate check, as an EHR's: a document number (TXA-12) already
  // applied by the same event is not applied again, only acknowledged again. With
  // --log, every message read is appended to FILE (before it is acknowledged) and the
  // numbers applied are read back from it at start, so a peer killed and started again
  // keeps its count; each line says whether it was a duplicate.
  const applied = new Set();
  if (values.log && existsSync(values.log)) {
    for (const l of readFileSync(values.log, 'utf8').split('\n')) {
      if (!l.trim()) continue;
      const d = JSON.parse(l);
      if (!d.duplicate && d.ack === 'AA') applied.add(d.event + ':' + d.txa12);
    }
  }
  const delay = Number(values['delay-ms']);
  const server = new Hl7Server((connection) => {
    connection.addEventListener('message', async ({ message }) => {
      // Parse again from the text, as a receiver storing the message would.
      const msg = Hl7Message.parse(message.toString());
      const d = describe(msg);
      const key = d.event + ':' + d.txa12;
      d.duplicate = applied.has(key);
      d.ack = values.ack;
      if (values.ack === 'AA') applied.add(key);
      const line = JSON.stringify(d);
      if (values.log) appendFileSync(values.log, line + '\n');
      console.log(line);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      const ackCode = values.ack;
      let errSegment;
      if (ackCode !== 'AA' && ackCode !== 'CA') {
        errSegment = new Hl7Segment(['ERR', '', 'TXA^1^12', '207^Application internal error^HL70357', 'E', '', '', '', values.text], msg.context);
      }
      connection.send(msg.buildAck({ ackCode, errSegment }));
    });
  });
  server.start(Number(values.port));
  server.server.once('listening', () => {
    console.log(JSON.stringify({ port: server.server.address().port }));
  });
  const stop = () => server.stop({ forceDrainTimeoutMs: 100 }).finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (!values.daemon) {
    process.stdin.on('end', stop); // the test closes our stdin when it is done
    process.stdin.resume();
  }
} else {
  if (positionals.length !== 1) {
    console.error('usage: node mdm-peer.mjs --listen [--ack CODE] [--text REASON] | node mdm-peer.mjs FILE');
    process.exit(2);
  }
  const messages = [];
  for (const seg of readFileSync(positionals[0], 'utf8').split(/\r\n|\r|\n/)) {
    if (seg.trim() === '') continue;
    if (seg.startsWith('MSH')) messages.push([]);
    messages[messages.length - 1]?.push(seg);
  }
  for (const segs of messages) {
    console.log(JSON.stringify(describe(Hl7Message.parse(segs.join('\r')))));
  }
}
