package indexer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"

	"github.com/chartscan/chartscan"
)

// ErrHL7 is wrapped (with ErrUnsupportedFormat) by the error ReadRecords returns for HL7
// v2 input, so a caller can open the file again and read it with ReadHL7.
var ErrHL7 = errors.New("hl7 v2 input")

// ADT trigger events ReadHL7 and ParseHL7 report. Others (discharges, transfers, visit
// merges, links) change nothing in the EMPI: a message of one is read and carries no
// change.
const (
	ADTAdmit          = "A01"
	ADTRegister       = "A04"
	ADTPreAdmit       = "A05"
	ADTUpdate         = "A08"
	ADTAddPerson      = "A28"
	ADTUpdatePerson   = "A31"
	ADTMergePatient   = "A18" // merge patient information (before v2.3.1)
	ADTMergePerson    = "A30" // merge person information
	ADTMergeID        = "A34" // merge patient information, patient ID only
	ADTMergeIDAccount = "A36" // merge patient ID and account number
	ADTMergePersonID  = "A39" // merge person, patient ID
	ADTMergePatientID = "A40" // merge patient, patient identifier list
	ADTChangeID       = "A47" // change patient identifier list: the old one is an alias
	ADTUnlink         = "A37" // unlink (unmerge): a person must undo a merge
)

// ADTKind is what an ADTEvent asks of the EMPI.
type ADTKind string

// The kinds of ADTEvent.
const (
	ADTUpsert  ADTKind = "upsert"  // insert or update Patient by its MRN
	ADTMerge   ADTKind = "merge"   // MergedMRN becomes an alias of Patient.MRN
	ADTUnmerge ADTKind = "unmerge" // undo a merge: refused, a person does it
)

var adtKinds = map[string]ADTKind{
	ADTAdmit: ADTUpsert, ADTRegister: ADTUpsert, ADTPreAdmit: ADTUpsert, ADTUpdate: ADTUpsert,
	ADTAddPerson: ADTUpsert, ADTUpdatePerson: ADTUpsert,
	ADTMergePatient: ADTMerge, ADTMergePerson: ADTMerge, ADTMergeID: ADTMerge, ADTMergeIDAccount: ADTMerge,
	ADTMergePersonID: ADTMerge, ADTMergePatientID: ADTMerge, ADTChangeID: ADTMerge,
	ADTUnlink: ADTUnmerge,
}

// ADTEvent is one EMPI change read from an HL7 v2 ADT message. For an upsert Patient is
// the patient to insert or update by MRN. For a merge Patient is the surviving patient
// as the message gives it (it may hold only the MRN: a merge needs only the two
// identifiers) and MergedMRN the MRN merged into it (MRG-1), whose pages and record move
// to Patient.MRN. An unmerge names the two the same way.
type ADTEvent struct {
	Type      string // the trigger event, A04
	Kind      ADTKind
	Patient   chartscan.Patient
	MergedMRN string
	// Demographics reports whether the PID held more than the MRN: a name or a birth
	// date. A merge whose survivor is not in the EMPI creates it from such a PID.
	Demographics bool
	// PID is the position of the message's PID segment this event came from (1 for the
	// first), for errors that must name it.
	PID int
	// MRNSystem is the assigning authority of Patient.MRN ("" when the message names
	// none), and IDs the patient's other identifiers in PID-3 (other facilities' MRNs,
	// a national id), each by its assigning authority, else its type.
	MRNSystem string
	IDs       []SystemID
}

// HL7Options are what a facility configures about its HL7 feed.
type HL7Options struct {
	// MRNSystem, when set, is the assigning authority of the facility's MRNs (CX-4's
	// namespace or universal id, or CX-9/CX-10): the PID-3 and MRG-1 identifier it names
	// is the MRN. Empty: the identifier typed MR, else the first.
	MRNSystem string
}

// HL7Message is one HL7 v2 message: the header an acknowledgement answers and the EMPI
// changes it asks for.
type HL7Message struct {
	// Sender is MSH-3 and MSH-4 (sending application and facility) as sent: with the
	// control id, it names the message.
	SendingApp, SendingFacility     string
	ReceivingApp, ReceivingFacility string
	ControlID                       string // MSH-10
	ProcessingID                    string // MSH-11
	Version                         string // MSH-12
	Charset                         string // MSH-18 as sent
	Type, Event                     string // MSH-9: ADT, A04
	// Digest is the SHA-256 of the message's content without MSH-7 (the time it was
	// sent): a message sent again unchanged has the same digest.
	Digest [32]byte
	Events []ADTEvent

	d hl7Delims
}

// HL7Error says why a message cannot be applied: the segment and field ("PID-3"), an
// error code of HL7 table 0357 and a fixed reason. It never holds a value of the message.
// Reject marks a message that is not well formed (acknowledged AR); the others are well
// formed but cannot be applied (AE).
type HL7Error struct {
	Segment string // "PID", "MSH"; "" for the message as a whole
	Seq     int    // which of the message's segments with that id, from 1
	Field   int    // 0 for the segment as a whole
	Code    int    // HL7 table 0357: 100 segment sequence, 101 required field missing, …
	Reason  string
	Reject  bool
	// Warning marks a note on a message that was applied (ERR-4 W, with an AA).
	Warning bool
}

// HL7 table 0357 codes the reader uses.
const (
	hl7SegmentSequence = 100
	hl7RequiredMissing = 101
	hl7DataType        = 102
	hl7UnsupportedType = 200
)

// Error returns "PID-3: no MRN".
func (e *HL7Error) Error() string {
	switch {
	case e.Segment == "":
		return e.Reason
	case e.Field == 0:
		return e.Segment + ": " + e.Reason
	}
	return fmt.Sprintf("%s-%d: %s", e.Segment, e.Field, e.Reason)
}

func hl7Err(seg string, seq, field, code int, reason string) *HL7Error {
	return &HL7Error{Segment: seg, Seq: seq, Field: field, Code: code, Reason: reason}
}

func hl7Reject(seg string, field, code int, reason string) *HL7Error {
	e := hl7Err(seg, 1, field, code, reason)
	e.Reject = true
	return e
}

// hl7Delims are a message's separators, from MSH-1 and MSH-2, and its character set.
type hl7Delims struct {
	field, comp, rep, esc, sub byte
	// decode turns bytes of the message's character set (those a \X..\ escape gives)
	// into text.
	decode func([]byte) string
}

// ReadHL7 reads HL7 v2 messages from r and calls fn with each, in order. Segments end in
// \r (also \n or \r\n); each MSH starts a message; MLLP framing bytes (0x0B, 0x1C), file
// and batch headers (FHS, BHS, BTS, FTS) and comment lines before a message (starting
// with # or //) are ignored. A message is read as ParseHL7 reads it. A message that
// cannot be read is handed to skip as "message N" with the reason (never a value), and
// the reading goes on; with a nil skip it stops the read with a *chartscan.Error saying
// the same. An error from fn or skip is returned as it is.
func ReadHL7(r io.Reader, opts HL7Options, fn func(*HL7Message) error, skip func(BadRecord) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	sc.Split(splitSegments)
	var msg [][]byte
	n := 0
	bad := func(reason string) error {
		where := fmt.Sprintf("message %d", n)
		if skip == nil {
			return invalid(where, "%s", reason)
		}
		return skip(BadRecord{Where: where, Reason: reason})
	}
	flush := func() error {
		if len(msg) == 0 {
			return nil
		}
		n++
		m, err := parseSegments(msg, opts)
		msg = msg[:0]
		if err != nil {
			return bad(err.Error())
		}
		return fn(m)
	}
	first := true
	for sc.Scan() {
		seg := sc.Bytes()
		if first {
			seg = bytes.TrimPrefix(seg, utf8BOM)
			first = false
		}
		switch {
		case bytes.HasPrefix(seg, []byte("MSH")):
			if err := flush(); err != nil {
				return err
			}
		case len(msg) == 0:
			if isBatchSegment(seg) || isCommentLine(seg) {
				continue
			}
			n++
			if err := bad("segment before MSH"); err != nil {
				return err
			}
			// Skip to the next MSH: the segments of a message without one are no message.
			for sc.Scan() {
				if bytes.HasPrefix(sc.Bytes(), []byte("MSH")) {
					msg = append(msg, bytes.Clone(sc.Bytes()))
					break
				}
			}
			continue
		}
		msg = append(msg, bytes.Clone(seg))
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return chartscan.Errorf(chartscan.EInvalid, "message %d: segment too long", n+1)
		}
		return fmt.Errorf("read hl7: %w", err)
	}
	return flush()
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func isBatchSegment(seg []byte) bool {
	for _, s := range []string{"FHS", "BHS", "BTS", "FTS"} {
		if bytes.HasPrefix(seg, []byte(s)) {
			return true
		}
	}
	return false
}

func isCommentLine(seg []byte) bool {
	seg = bytes.TrimSpace(seg)
	return len(seg) == 0 || seg[0] == '#' || bytes.HasPrefix(seg, []byte("//"))
}

// splitSegments is a bufio.SplitFunc that yields non-empty segments, ending them at \r,
// \n and the MLLP framing bytes.
func splitSegments(data []byte, atEOF bool) (int, []byte, error) {
	start := 0
	for start < len(data) && isSegmentEnd(data[start]) {
		start++
	}
	for i := start; i < len(data); i++ {
		if isSegmentEnd(data[i]) {
			return i + 1, data[start:i], nil
		}
	}
	if atEOF && start < len(data) {
		return len(data), data[start:], nil
	}
	if atEOF {
		return len(data), nil, nil
	}
	return start, nil, nil
}

func isSegmentEnd(c byte) bool { return c == '\r' || c == '\n' || c == 0x0b || c == 0x1c }

// ParseHL7 reads one HL7 v2 message, its segments separated by \r (or \n). Separators
// come from MSH-1 and MSH-2; the text is decoded from MSH-18's character set (ASCII,
// 8859/1 to 8859/15, UNICODE UTF-8; without MSH-18, text that is not valid UTF-8 is read
// as Windows-1252, Latin-1's superset), after a byte-order mark; the escapes \F\ \S\ \T\
// \R\ \E\ \Xhh…\ and \.br\ are decoded and other formatting escapes dropped. From an ADT
// message it reads, per PID, PID-3 (the MRN: see HL7Options; else PID-2), PID-5 (the
// legal name, else the first: family^given^middle), PID-7 (YYYYMMDD…; YYYY and YYYYMM
// are kept as partial dates), PID-8, PID-11 (street^other^city^state^zip), PID-13 and,
// for a merge, the MRG after it (MRG-1, else MRG-4). Messages of other types, and ADT
// events that change no patient, carry no events.
//
// The error is an *HL7Error. When it is not nil the message is still returned if its
// MSH could be read, so that an acknowledgement can answer it; a nil message means not
// even the MSH was readable.
func ParseHL7(raw []byte, opts HL7Options) (*HL7Message, error) {
	raw = bytes.TrimPrefix(bytes.TrimLeft(raw, "\x0b\r\n"), utf8BOM)
	var segs [][]byte
	for _, s := range bytes.FieldsFunc(raw, func(r rune) bool { return r == '\r' || r == '\n' || r == 0x1c || r == 0x0b }) {
		if len(s) > 0 && !(len(segs) == 0 && (isBatchSegment(s) || isCommentLine(s))) {
			segs = append(segs, s)
		}
	}
	if len(segs) == 0 || !bytes.HasPrefix(segs[0], []byte("MSH")) {
		return nil, hl7Reject("MSH", 0, hl7SegmentSequence, "the message does not start with an MSH segment")
	}
	return parseSegments(segs, opts)
}

// parseSegments reads one message, its segments starting with MSH.
func parseSegments(raw [][]byte, opts HL7Options) (*HL7Message, error) {
	mshRaw := raw[0]
	if len(mshRaw) < 8 {
		return nil, hl7Reject("MSH", 0, hl7RequiredMissing, "segment too short")
	}
	d := hl7Delims{field: mshRaw[3], comp: '^', rep: '~', esc: '\\', sub: '&'}
	enc, _, _ := bytes.Cut(mshRaw[4:], []byte{d.field})
	for i, p := range []*byte{&d.comp, &d.rep, &d.esc, &d.sub} {
		if i < len(enc) {
			*p = enc[i]
		}
	}
	if d.field == d.comp || isSegmentEnd(d.field) || isAlnum(d.field) || d.field >= 0x80 {
		return nil, hl7Reject("MSH", 1, hl7DataType, "not a usable field separator")
	}
	// The header is ASCII whatever the character set: read MSH-18 before decoding. MSH-1
	// is the separator itself, so MSH-n is msh(n), field n-1 of the split.
	mshFields := strings.Split(string(mshRaw), string(d.field))
	msh := func(n int) string { return hl7Field(mshFields, n-1) }
	m := &HL7Message{d: d}
	m.Charset = strings.TrimSpace(msh(18))
	charset, _, _ := strings.Cut(m.Charset, string(d.rep))
	dec, ok := hl7Charset(charset)
	// MSH is field-split on the raw bytes so that its fields can always be echoed.
	m.SendingApp, m.SendingFacility, m.ReceivingApp, m.ReceivingFacility = msh(3), msh(4), msh(5), msh(6)
	m.ControlID, m.ProcessingID, m.Version = msh(10), msh(11), msh(12)
	for _, f := range []*string{&m.SendingApp, &m.SendingFacility, &m.ReceivingApp, &m.ReceivingFacility, &m.ControlID, &m.ProcessingID, &m.Version} {
		if !utf8.ValidString(*f) || strings.ContainsAny(*f, "\x00") {
			*f = "" // an echo must be valid text; the header fields are ASCII in any set
		}
	}
	if !ok {
		return m, hl7Reject("MSH", 18, 203, "character set not supported")
	}
	segs := make([]string, len(raw))
	for i, s := range raw {
		text, err := decodeText(s, dec, charset == "")
		if err != nil {
			return m, hl7Reject("MSH", 18, hl7DataType, "text is not valid in the declared character set")
		}
		segs[i] = text
	}
	m.d.decode = func(b []byte) string {
		s, err := decodeText(b, dec, charset == "")
		if err != nil {
			return ""
		}
		return s
	}
	d = m.d
	// The digest leaves out MSH-7, the time of sending, which a resend may renew.
	h := sha256.New()
	for i, s := range segs {
		if i == 0 {
			f := strings.Split(s, string(d.field))
			if len(f) > 6 {
				f[6] = "" // MSH-7
			}
			s = strings.Join(f, string(d.field))
		}
		h.Write([]byte(s))
		h.Write([]byte{'\r'})
	}
	h.Sum(m.Digest[:0])

	msgType := d.components(hl7Field(strings.Split(segs[0], string(d.field)), 8)) // MSH-9
	m.Type, m.Event = part(msgType, 0), part(msgType, 1)
	if m.Type == "" {
		return m, hl7Reject("MSH", 9, hl7RequiredMissing, "no message type")
	}
	if m.Type != "ADT" {
		return m, nil
	}
	if m.Event == "" {
		// Some senders leave MSH-9.2 empty and name the event in EVN-1.
		for _, s := range segs[1:] {
			if f := strings.Split(s, string(d.field)); f[0] == "EVN" {
				m.Event = part(d.components(hl7Field(f, 1)), 0)
				break
			}
		}
	}
	kind, ok := adtKinds[m.Event]
	if !ok {
		return m, nil
	}
	err := m.readEvents(segs[1:], kind, opts)
	return m, err
}

// readEvents reads the events of an ADT message of the given kind from its segments
// after MSH.
func (m *HL7Message) readEvents(segs []string, kind ADTKind, opts HL7Options) error {
	d := m.d
	var pid []string
	pids, mrgs := 0, 0
	pending := false // a merge's PID waiting for its MRG
	for _, seg := range segs {
		fs := strings.Split(seg, string(d.field))
		switch fs[0] {
		case "PID":
			pids++
			if pending {
				return hl7Err("MRG", mrgs+1, 0, hl7SegmentSequence, "a merge's PID segment without its MRG segment")
			}
			pid = fs
			if kind == ADTUpsert {
				if pids > 1 {
					continue // an upsert is of one patient; more PIDs are not ours to read
				}
				p, demo, err := d.patient(pid, pids, opts)
				if err != nil {
					return err
				}
				sys, ids := d.systems(pid, p.MRN)
				m.Events = append(m.Events, ADTEvent{Type: m.Event, Kind: kind, Patient: p, Demographics: demo, PID: pids, MRNSystem: sys, IDs: ids})
				continue
			}
			pending = true
		case "MRG":
			mrgs++
			if kind == ADTUpsert {
				continue
			}
			if pid == nil || !pending {
				return hl7Reject("MRG", 0, hl7SegmentSequence, "MRG segment without a PID segment before it")
			}
			pending = false
			p, demo, err := d.patient(pid, pids, opts)
			if err != nil {
				return err
			}
			merged := NormalizeMRN(d.identifier(hl7Field(fs, 1), opts))
			if merged == "" {
				merged = NormalizeMRN(d.identifier(hl7Field(fs, 4), opts))
			}
			if merged == "" {
				return hl7Err("MRG", mrgs, 1, hl7RequiredMissing, "no identifier of the merged patient")
			}
			if merged == p.MRN {
				return hl7Err("MRG", mrgs, 1, 205, "the merged identifier is the survivor's")
			}
			sys, _ := d.systems(pid, p.MRN)
			m.Events = append(m.Events, ADTEvent{Type: m.Event, Kind: kind, Patient: p, MergedMRN: merged, Demographics: demo, PID: pids, MRNSystem: sys})
		}
	}
	if len(m.Events) > 0 {
		if pending {
			return hl7Err("MRG", mrgs+1, 0, hl7SegmentSequence, "a merge's PID segment without its MRG segment")
		}
		return nil
	}
	if kind != ADTUpsert && pids > 0 {
		return hl7Err("MRG", 1, 0, hl7RequiredMissing, "no MRG segment")
	}
	return hl7Err("PID", 1, 0, hl7RequiredMissing, "no PID segment")
}

// hl7Charset returns the decoder of an MSH-18 value (HL7 table 0211); nil for UTF-8 and
// ASCII, which need none. ok is false for a character set it does not read.
func hl7Charset(name string) (encoding.Encoding, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	switch n {
	case "", "ASCII", "UNICODE UTF-8", "UTF-8", "UNICODE":
		// "UNICODE" is ambiguous in the standard; senders that write it send UTF-8.
		return nil, true
	}
	isoParts := map[string]encoding.Encoding{
		"1": charmap.ISO8859_1, "2": charmap.ISO8859_2, "3": charmap.ISO8859_3, "4": charmap.ISO8859_4,
		"5": charmap.ISO8859_5, "6": charmap.ISO8859_6, "7": charmap.ISO8859_7, "8": charmap.ISO8859_8,
		"9": charmap.ISO8859_9, "10": charmap.ISO8859_10, "13": charmap.ISO8859_13, "14": charmap.ISO8859_14,
		"15": charmap.ISO8859_15,
	}
	if rest, ok := strings.CutPrefix(n, "8859/"); ok {
		e, ok := isoParts[rest]
		return e, ok
	}
	// The DICOM-style names some senders use: ISO IR100 is 8859/1.
	irs := map[string]string{"ISO IR100": "1", "ISO IR101": "2", "ISO IR109": "3", "ISO IR110": "4",
		"ISO IR144": "5", "ISO IR127": "6", "ISO IR126": "7", "ISO IR138": "8", "ISO IR148": "9"}
	if p, ok := irs[n]; ok {
		return isoParts[p], true
	}
	switch n {
	case "WINDOWS-1252", "CP1252":
		return charmap.Windows1252, true
	case "ISO-8859-1", "LATIN1":
		return charmap.ISO8859_1, true
	}
	return nil, false
}

// decodeText decodes b from enc (nil: UTF-8). Undeclared text that is not valid UTF-8
// is read as Windows-1252; declared UTF-8 that is not valid is an error.
func decodeText(b []byte, enc encoding.Encoding, undeclared bool) (string, error) {
	if enc == nil {
		if utf8.Valid(b) {
			return strings.ReplaceAll(string(b), "\x00", ""), nil
		}
		if !undeclared {
			return "", errors.New("invalid utf-8")
		}
		enc = charmap.Windows1252
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(string(out), "\x00", ""), nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// hl7Field returns fs[i], "" when the segment is shorter.
func hl7Field(fs []string, i int) string {
	if i < len(fs) {
		return fs[i]
	}
	return ""
}

// part returns parts[i], "" when there are fewer parts.
func part(parts []string, i int) string {
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

// components splits a field's first repetition into unescaped components, taking the
// first subcomponent of each.
func (d hl7Delims) components(f string) []string {
	rep, _, _ := strings.Cut(f, string(d.rep))
	return d.split(rep)
}

// split splits one repetition into unescaped components (first subcomponent each).
func (d hl7Delims) split(rep string) []string {
	var out []string
	for _, c := range strings.Split(rep, string(d.comp)) {
		sub, _, _ := strings.Cut(c, string(d.sub))
		out = append(out, d.value(sub))
	}
	return out
}

// subcomponents splits one component into its unescaped subcomponents.
func (d hl7Delims) subcomponents(c string) []string {
	var out []string
	for _, s := range strings.Split(c, string(d.sub)) {
		out = append(out, d.value(s))
	}
	return out
}

// value unescapes one primitive value; HL7's explicit null ("") is empty.
func (d hl7Delims) value(s string) string {
	s = strings.TrimSpace(s)
	if s == `""` {
		return ""
	}
	return strings.TrimSpace(d.unescape(s))
}

// reps splits a field into its repetitions, each split into components.
func (d hl7Delims) reps(f string) [][]string {
	var out [][]string
	for _, r := range strings.Split(f, string(d.rep)) {
		out = append(out, d.split(r))
	}
	return out
}

// unescape decodes \F\ \S\ \T\ \R\ \E\, \Xhh…\ (bytes of the message's character set)
// and \.br\ (a line break, read as a space); other escapes (highlighting, character-set
// switches, formatting) are dropped, and an unterminated one is kept as text.
func (d hl7Delims) unescape(s string) string {
	if strings.IndexByte(s, d.esc) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != d.esc {
			b.WriteByte(s[i])
			continue
		}
		end := strings.IndexByte(s[i+1:], d.esc)
		if end < 0 {
			b.WriteString(s[i:])
			break
		}
		seq := s[i+1 : i+1+end]
		i += end + 1
		switch {
		case seq == "F":
			b.WriteByte(d.field)
		case seq == "S":
			b.WriteByte(d.comp)
		case seq == "T":
			b.WriteByte(d.sub)
		case seq == "R":
			b.WriteByte(d.rep)
		case seq == "E":
			b.WriteByte(d.esc)
		case seq == ".br":
			b.WriteByte(' ')
		case len(seq) > 1 && seq[0] == 'X' && len(seq)%2 == 1:
			var raw []byte
			for j := 1; j+1 < len(seq); j += 2 {
				if v, err := strconv.ParseUint(seq[j:j+2], 16, 8); err == nil && (v >= 0x20 || v == '\t') {
					raw = append(raw, byte(v))
				}
			}
			if d.decode != nil {
				b.WriteString(d.decode(raw))
			} else if utf8.Valid(raw) {
				b.Write(raw)
			}
		}
	}
	return b.String()
}

// identifier picks from a CX list the MRN: with opts.MRNSystem, the identifier whose
// assigning authority (CX-4, CX-9, CX-10) or facility (CX-6) it names; otherwise the
// identifier of type MR (CX-5), else the first that is not empty.
func (d hl7Delims) identifier(f string, opts HL7Options) string {
	if sys := strings.TrimSpace(opts.MRNSystem); sys != "" {
		for _, cx := range d.rawReps(f) {
			if id := d.value(part(cx, 0)); id != "" && d.cxHasSystem(cx, sys) {
				return id
			}
		}
		return ""
	}
	var firstID string
	for _, cx := range d.reps(f) {
		id := part(cx, 0)
		if id == "" {
			continue
		}
		if part(cx, 4) == "MR" {
			return id
		}
		if firstID == "" {
			firstID = id
		}
	}
	return firstID
}

// systems returns, for a PID whose MRN is mrn, the MRN's assigning authority and the
// other identifiers of PID-3 (and PID-2, PID-4), each by its system.
func (d hl7Delims) systems(pid []string, mrn string) (string, []SystemID) {
	sys, found := "", false
	var ids []SystemID
	for _, f := range []int{3, 2, 4} {
		for _, cx := range d.rawReps(hl7Field(pid, f)) {
			id := NormalizeMRN(d.value(part(cx, 0)))
			if id == "" {
				continue
			}
			s := d.cxSystem(cx)
			if !found && id == mrn {
				sys, found = s, true
				continue
			}
			ids = append(ids, SystemID{System: s, Value: id})
		}
	}
	return sys, normalizeIDs(ids, mrn, sys)
}

// cxSystem names the system of a CX (components still escaped): its assigning
// authority's namespace or universal id (CX-4, CX-9, CX-10) or its facility (CX-6), else
// its identifier type (CX-5).
func (d hl7Delims) cxSystem(cx []string) string {
	for _, i := range []int{3, 8, 9, 5} {
		for j, s := range d.subcomponents(part(cx, i)) {
			if j < 2 && s != "" {
				return s
			}
		}
	}
	return d.value(part(cx, 4))
}

// rawReps splits a field into repetitions of components, still escaped, so that a
// component's subcomponents (an HD's namespace&universal id&type) can be read.
func (d hl7Delims) rawReps(f string) [][]string {
	var out [][]string
	for _, r := range strings.Split(f, string(d.rep)) {
		out = append(out, strings.Split(r, string(d.comp)))
	}
	return out
}

// cxHasSystem reports whether a CX (components still escaped) is of system sys: its
// assigning authority's namespace or universal id (CX-4, CX-9, CX-10) or its facility
// (CX-6) is sys, ignoring case.
func (d hl7Delims) cxHasSystem(cx []string, sys string) bool {
	for _, i := range []int{3, 5, 8, 9} {
		for j, s := range d.subcomponents(part(cx, i)) {
			if j < 2 && s != "" && strings.EqualFold(s, sys) {
				return true
			}
		}
	}
	return false
}

// patient reads the PID fields of one patient; seq is the PID's position in the
// message. demo reports whether the PID held a name or a birth date.
func (d hl7Delims) patient(pid []string, seq int, opts HL7Options) (p chartscan.Patient, demo bool, err error) {
	p.MRN = d.identifier(hl7Field(pid, 3), opts)
	if p.MRN == "" {
		// PID-2, the "external" patient ID of v2.3 and before, where older senders put it.
		p.MRN = d.identifier(hl7Field(pid, 2), opts)
	}
	names := d.reps(hl7Field(pid, 5))
	name := names[0]
	for _, n := range names {
		if part(n, 6) == "L" {
			name = n
			break
		}
	}
	p.Family = part(name, 0)
	p.Given = strings.TrimSpace(part(name, 1) + " " + part(name, 2))
	p.BirthDate = part(d.components(hl7Field(pid, 7)), 0)
	switch sex := part(d.components(hl7Field(pid, 8)), 0); sex {
	case "A":
		p.Sex = "other"
	default:
		p.Sex = sex
	}
	addr := d.components(hl7Field(pid, 11))
	p.Street = part(addr, 0)
	if other := part(addr, 1); other != "" {
		p.Street += ", " + other
	}
	p.City, p.State, p.Postcode = part(addr, 2), part(addr, 3), part(addr, 4)
	for _, xtn := range d.reps(hl7Field(pid, 13)) {
		if ph := part(xtn, 0); ph != "" {
			p.Phone = ph
			break
		}
		if ph := strings.TrimSpace(part(xtn, 5) + " " + part(xtn, 6)); ph != "" {
			p.Phone = ph
			break
		}
	}
	demo = p.Family != "" || p.Given != "" || p.BirthDate != ""
	p, err = normalizePatient(p, parseHL7Date)
	if err != nil {
		switch err.Error() {
		case "no MRN":
			if opts.MRNSystem != "" {
				return p, demo, hl7Err("PID", seq, 3, hl7RequiredMissing, "no identifier of the facility's MRN system")
			}
			return p, demo, hl7Err("PID", seq, 3, hl7RequiredMissing, "no MRN")
		case "invalid birth date":
			return p, demo, hl7Err("PID", seq, 7, hl7DataType, "invalid birth date")
		}
		return p, demo, hl7Err("PID", seq, 0, hl7DataType, err.Error())
	}
	return p, demo, nil
}

// parseHL7Date reads the day of an HL7 DTM (YYYYMMDD[HHMM[SS…]][+ZZZZ]). A date given
// only to the year or month (YYYY, YYYYMM) is kept as the partial date YYYY or YYYY-MM.
func parseHL7Date(s string) (string, bool) {
	digits := s
	if i := strings.IndexAny(s, "+-."); i >= 0 {
		digits = s[:i]
	}
	if !onlyDigits(digits) {
		return "", false
	}
	if len(digits) < 8 {
		d := digits
		if len(d) == 6 {
			d = d[:4] + "-" + d[4:]
		}
		if isPartialDate(d) {
			return d, true
		}
		return "", true // unknown, as it always was: a bad message would stop the whole file
	}
	d := digits[:4] + "-" + digits[4:6] + "-" + digits[6:8]
	return d, isISODate(d)
}

// looksLikeHL7 reports whether the start of an input is an HL7 v2 message: MSH, FHS or
// BHS followed by a field separator, possibly after an MLLP start byte, a byte-order mark
// and comment lines (# or //).
func looksLikeHL7(head []byte) bool {
	for {
		head = bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), "\x0b\r\n \t")
		if !isCommentLine(lineOf(head)) || len(head) == 0 {
			break
		}
		i := bytes.IndexAny(head, "\r\n")
		if i < 0 {
			return false
		}
		head = head[i:]
	}
	if len(head) < 4 || isAlnum(head[3]) || isSegmentEnd(head[3]) {
		return false
	}
	s := string(head[:3])
	return s == "MSH" || s == "FHS" || s == "BHS"
}

// lineOf returns b up to its first line end.
func lineOf(b []byte) []byte {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		return b[:i]
	}
	return b
}

// HL7 acknowledgement codes (MSA-1), original mode.
const (
	AckAccept = "AA" // the message was applied (or had been: a resend)
	AckError  = "AE" // the message is well formed but could not be applied
	AckReject = "AR" // the message is not well formed, or not a kind this receiver takes
)

// HL7Ack returns the acknowledgement of m (which may be nil: a message whose MSH could
// not be read) with the given code: an ACK whose MSH answers m's (sender and receiver
// swapped, m's event, processing id and version), an MSA echoing m's control id, and, for
// an error, an ERR naming the segment and field (from an *HL7Error) with the reason,
// which must hold no patient data. controlID is the ACK's own MSH-10; now its MSH-7.
func HL7Ack(m *HL7Message, code string, reason error, controlID string, now time.Time) []byte {
	d := hl7Delims{field: '|', comp: '^', rep: '~', esc: '\\', sub: '&'}
	var hdr HL7Message
	if m != nil {
		hdr = *m
		if m.d.field != 0 {
			d = m.d
		}
	}
	if hdr.ProcessingID == "" {
		hdr.ProcessingID = "P"
	}
	if hdr.Version == "" {
		hdr.Version = "2.5"
	}
	f := string(d.field)
	esc := d.escape
	typ := "ACK"
	if hdr.Event != "" {
		typ += string(d.comp) + esc(hdr.Event) + string(d.comp) + "ACK"
	}
	var b strings.Builder
	b.WriteString("MSH" + f + string([]byte{d.comp, d.rep, d.esc, d.sub}) + f +
		hdr.ReceivingApp + f + hdr.ReceivingFacility + f + hdr.SendingApp + f + hdr.SendingFacility + f +
		now.Format("20060102150405-0700") + f + f + typ + f + esc(controlID) + f + hdr.ProcessingID + f + hdr.Version)
	if hdr.Charset != "" {
		// The acknowledgement is ASCII, which every character set reads.
		b.WriteString(f + f + f + f + f + f + hdr.Charset)
	}
	b.WriteString("\rMSA" + f + code + f + hdr.ControlID)
	if reason != nil {
		b.WriteString(f + esc(truncate(reason.Error(), 80)))
	}
	b.WriteByte('\r')
	if reason != nil {
		var he *HL7Error
		code, loc, text := 207, "", reason.Error()
		if errors.As(reason, &he) {
			code, text = he.Code, he.Reason
			if he.Segment != "" {
				loc = esc(he.Segment) + string(d.comp) + strconv.Itoa(max(he.Seq, 1))
				if he.Field > 0 {
					loc += string(d.comp) + strconv.Itoa(he.Field)
				}
			}
		}
		sub := string(d.sub)
		// ERR-1 (v2.3's location and code) and ERR-2 to ERR-4 (v2.5's), so both read it.
		err1 := loc + strings.Repeat(string(d.comp), 3-strings.Count(loc, string(d.comp))) + strconv.Itoa(code) + sub + esc(text) + sub + "HL70357"
		severity := "E"
		if he != nil && he.Warning {
			severity = "W"
		}
		b.WriteString("ERR" + f + err1 + f + loc + f + strconv.Itoa(code) + string(d.comp) + esc(text) + string(d.comp) + "HL70357" + f + severity + "\r")
	}
	return []byte(b.String())
}

// escape escapes the separators in a text value.
func (d hl7Delims) escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case d.esc:
			b.WriteString(string(d.esc) + "E" + string(d.esc))
		case d.field:
			b.WriteString(string(d.esc) + "F" + string(d.esc))
		case d.comp:
			b.WriteString(string(d.esc) + "S" + string(d.esc))
		case d.sub:
			b.WriteString(string(d.esc) + "T" + string(d.esc))
		case d.rep:
			b.WriteString(string(d.esc) + "R" + string(d.esc))
		case '\r', '\n':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// truncate shortens s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
