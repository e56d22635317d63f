package indexer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/chartscan/chartscan"
)

// ErrHL7 is wrapped (with ErrUnsupportedFormat) by the error ReadRecords returns for HL7
// v2 input, so a caller can open the file again and read it with ReadHL7.
var ErrHL7 = errors.New("hl7 v2 input")

// ADT trigger events ReadHL7 reports; it skips all others (discharges, transfers, …),
// which change nothing in the EMPI.
const (
	ADTAdmit          = "A01"
	ADTRegister       = "A04"
	ADTUpdate         = "A08"
	ADTAddPerson      = "A28"
	ADTUpdatePerson   = "A31"
	ADTMergePatientID = "A40"
)

// ADTEvent is one EMPI change read from an HL7 v2 ADT message. For the upserts (A01,
// A04, A08, A28, A31) Patient is the patient to insert or update by MRN. For a merge
// (A40) Patient is the surviving patient and MergedMRN the MRN merged into it (MRG-1),
// whose pages and record the importer must move to Patient.MRN.
type ADTEvent struct {
	Type      string
	Patient   chartscan.Patient
	MergedMRN string
}

var adtUpserts = map[string]bool{ADTAdmit: true, ADTRegister: true, ADTUpdate: true, ADTAddPerson: true, ADTUpdatePerson: true}

// hl7Delims are a message's separators, from MSH-1 and MSH-2.
type hl7Delims struct {
	field, comp, rep, esc, sub byte
}

// ReadHL7 reads HL7 v2 ADT messages from r and calls fn for each upsert or merge, in
// order. Segments end in \r (also \n or \r\n); each MSH starts a message; MLLP framing
// bytes (0x0B, 0x1C) are ignored, as are file and batch headers. Separators come from
// MSH-1 and MSH-2 and the escapes \F\ \S\ \T\ \R\ \E\ are decoded (others dropped). It
// reads PID-3 (the MR identifier, else the first), PID-5 (the legal name, else the
// first: family^given^middle), PID-7 (YYYYMMDD…; YYYY and YYYYMM are kept as partial dates),
// PID-8, PID-11 (street^other^city^state^zip), PID-13 and, for A40, MRG-1 after each
// PID. A bad message stops the import with a *chartscan.Error naming the message by its
// number and the field, never its values; an error from fn is returned as it is.
func ReadHL7(r io.Reader, fn func(ADTEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	sc.Split(splitSegments)
	var msg []string
	n := 0
	flush := func() error {
		if len(msg) == 0 {
			return nil
		}
		n++
		err := readMessage(msg, fmt.Sprintf("message %d", n), fn)
		msg = msg[:0]
		return err
	}
	for sc.Scan() {
		seg := sc.Text()
		switch {
		case strings.HasPrefix(seg, "MSH"):
			if err := flush(); err != nil {
				return err
			}
		case len(msg) == 0:
			if isBatchSegment(seg) {
				continue
			}
			return chartscan.Errorf(chartscan.EInvalid, "message %d: segment before MSH", n+1)
		}
		msg = append(msg, seg)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return chartscan.Errorf(chartscan.EInvalid, "message %d: segment too long", n+1)
		}
		return fmt.Errorf("read hl7: %w", err)
	}
	return flush()
}

func isBatchSegment(seg string) bool {
	for _, s := range []string{"FHS", "BHS", "BTS", "FTS"} {
		if strings.HasPrefix(seg, s) {
			return true
		}
	}
	return false
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

// readMessage reads one message, its segments starting with MSH.
func readMessage(segs []string, where string, fn func(ADTEvent) error) error {
	msh := segs[0]
	if len(msh) < 8 {
		return invalid(where, "MSH segment too short")
	}
	d := hl7Delims{field: msh[3], comp: '^', rep: '~', esc: '\\', sub: '&'}
	enc, _, _ := strings.Cut(msh[4:], string(d.field))
	for i, p := range []*byte{&d.comp, &d.rep, &d.esc, &d.sub} {
		if i < len(enc) {
			*p = enc[i]
		}
	}
	if d.field == d.comp || isSegmentEnd(d.field) || isAlnum(d.field) {
		return invalid(where, "MSH-1 is not a usable field separator")
	}
	// MSH-1 is the separator itself, so MSH-n is field n-1 of the split.
	mshFields := strings.Split(msh, string(d.field))
	msgType := d.components(hl7Field(mshFields, 8))
	if part(msgType, 0) != "ADT" {
		return nil
	}
	event := part(msgType, 1)
	if !adtUpserts[event] && event != ADTMergePatientID {
		return nil
	}
	var pid []string
	sent := false
	for _, seg := range segs[1:] {
		fs := strings.Split(seg, string(d.field))
		switch fs[0] {
		case "PID":
			pid = fs
			if adtUpserts[event] && !sent {
				p, err := d.patient(pid, where)
				if err != nil {
					return err
				}
				sent = true
				if err := fn(ADTEvent{Type: event, Patient: p}); err != nil {
					return err
				}
			}
		case "MRG":
			if event != ADTMergePatientID {
				continue
			}
			if pid == nil {
				return invalid(where, "MRG segment before PID")
			}
			p, err := d.patient(pid, where)
			if err != nil {
				return err
			}
			merged := NormalizeMRN(d.identifier(hl7Field(fs, 1)))
			if merged == "" {
				return invalid(where, "MRG-1 has no identifier")
			}
			sent = true
			if err := fn(ADTEvent{Type: event, Patient: p, MergedMRN: merged}); err != nil {
				return err
			}
		}
	}
	if !sent {
		if event == ADTMergePatientID {
			return invalid(where, "A40 without PID and MRG segments")
		}
		return invalid(where, "no PID segment")
	}
	return nil
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
		out = append(out, strings.TrimSpace(d.unescape(sub)))
	}
	return out
}

// reps splits a field into its repetitions, each split into components.
func (d hl7Delims) reps(f string) [][]string {
	var out [][]string
	for _, r := range strings.Split(f, string(d.rep)) {
		out = append(out, d.split(r))
	}
	return out
}

// unescape decodes \F\ \S\ \T\ \R\ \E\ and \Xhh…\; other escapes (formatting, character
// sets) are dropped, and an unterminated one is kept as text.
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
		case len(seq) > 1 && seq[0] == 'X' && len(seq)%2 == 1:
			for j := 1; j+1 < len(seq); j += 2 {
				if v, err := strconv.ParseUint(seq[j:j+2], 16, 8); err == nil && v >= 0x20 {
					b.WriteByte(byte(v))
				}
			}
		}
	}
	return b.String()
}

// identifier picks from a CX list the identifier of type MR (CX-5), else the first one
// that is not empty.
func (d hl7Delims) identifier(f string) string {
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

// patient reads the PID fields of one patient.
func (d hl7Delims) patient(pid []string, where string) (chartscan.Patient, error) {
	var p chartscan.Patient
	p.MRN = d.identifier(hl7Field(pid, 3))
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
	p, err := normalizePatient(p, parseHL7Date)
	if err != nil {
		return p, invalid(where, "PID: %v", err)
	}
	return p, nil
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

// looksLikeHL7 reports whether the start of an input is an HL7 v2 message.
// MSH, FHS or BHS followed by a field separator, possibly after an MLLP start byte.
func looksLikeHL7(head []byte) bool {
	head = bytes.TrimPrefix(head, []byte{0x0b})
	if len(head) < 4 || isAlnum(head[3]) || isSegmentEnd(head[3]) {
		return false
	}
	s := string(head[:3])
	return s == "MSH" || s == "FHS" || s == "BHS"
}
