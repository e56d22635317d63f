package deliver

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// HL7 acknowledgement codes (MSA-1): original mode (AA, AE, AR) and enhanced mode's
// commit acknowledgements (CA, CE, CR).
const (
	AckAccept       = "AA" // the receiver applied the message
	AckError        = "AE" // the receiver could not apply it: the document is rejected
	AckReject       = "AR" // the receiver refused it (not well formed, not a kind it takes)
	AckCommitAccept = "CA" // enhanced mode: the receiver stored it
	AckCommitError  = "CE"
	AckCommitReject = "CR"
)

// Ack is an acknowledgement read by ReadACK.
type Ack struct {
	Code string // MSA-1: AA, AE, AR, CA, CE or CR
	// ControlID is MSA-2, the control id of the message acknowledged: the sender checks
	// it is the one it sent.
	ControlID string
	// Text is why the receiver answered as it did: MSA-3 and what the ERR segments say
	// (location and text, "PID-3: unknown patient") that MSA-3 does not, "; "-separated.
	// It is the receiver's text, shown to the records clerk as it is.
	Text string
}

// Accepted reports whether the receiver took the message: AA or CA.
func (a Ack) Accepted() bool { return a.Code == AckAccept || a.Code == AckCommitAccept }

// ParseACK reads an HL7 v2 acknowledgement and returns its MSA-1 code (AA, AE, AR, CA,
// CE, CR) and the receiver's reason text (see Ack.Text). See ReadACK.
func ParseACK(b []byte) (code, text string, err error) {
	a, err := ReadACK(b)
	return a.Code, a.Text, err
}

// ReadACK reads an HL7 v2 acknowledgement: segments separated by \r, \n or \r\n, MLLP
// framing bytes and a byte-order mark tolerated, delimiters from MSH-1 and MSH-2. Text
// is unescaped (\F\ \S\ \T\ \R\ \E\; \.br\ as a space; other escapes dropped) and read
// as UTF-8, or as Windows-1252 when it is not valid UTF-8. The error (not an HL7
// message, no MSA segment, an MSA-1 that is not an acknowledgement code) never quotes
// the message.
func ReadACK(b []byte) (Ack, error) {
	b = bytes.TrimPrefix(bytes.TrimLeft(b, "\x0b\r\n \t"), []byte("\xef\xbb\xbf"))
	b = bytes.TrimRight(b, "\x1c\r\n \t")
	if !utf8.Valid(b) {
		if dec, err := charmap.Windows1252.NewDecoder().Bytes(b); err == nil {
			b = dec
		}
	}
	segs := strings.FieldsFunc(string(b), func(r rune) bool { return r == '\r' || r == '\n' })
	if len(segs) == 0 || len(segs[0]) < 8 || !strings.HasPrefix(segs[0], "MSH") {
		return Ack{}, invalid("acknowledgement is not an HL7 message")
	}
	d := ackDelims{field: segs[0][3], comp: '^', rep: '~', esc: '\\', sub: '&'}
	enc, _, _ := strings.Cut(segs[0][4:], string(d.field))
	for i, p := range []*byte{&d.comp, &d.rep, &d.esc, &d.sub} {
		if i < len(enc) {
			*p = enc[i]
		}
	}
	var a Ack
	var msa []string
	var errs []string
	for _, s := range segs[1:] {
		fs := strings.Split(s, string(d.field))
		switch fs[0] {
		case "MSA":
			if msa == nil {
				msa = fs
			}
		case "ERR":
			if t := d.errText(fs); t != "" {
				errs = append(errs, t)
			}
		}
	}
	if msa == nil {
		return Ack{}, invalid("acknowledgement has no MSA segment")
	}
	a.Code = strings.ToUpper(d.value(field(msa, 1), 0))
	switch a.Code {
	case AckAccept, AckError, AckReject, AckCommitAccept, AckCommitError, AckCommitReject:
	default:
		return Ack{}, invalid("acknowledgement code (MSA-1) is not AA, AE, AR, CA, CE or CR")
	}
	a.ControlID = d.value(field(msa, 2), 0)
	a.Text = d.unescape(field(msa, 3))
	for _, e := range errs {
		if !strings.Contains(a.Text, e) && !strings.Contains(a.Text, afterLocation(e)) {
			if a.Text != "" {
				a.Text += "; "
			}
			a.Text += e
		}
	}
	return a, nil
}

// afterLocation is an ERR text without its "PID-3: " location.
func afterLocation(e string) string {
	if _, t, ok := strings.Cut(e, ": "); ok {
		return t
	}
	return e
}

// ackDelims are an acknowledgement's separators.
type ackDelims struct{ field, comp, rep, esc, sub byte }

// field returns fs[i], "" when the segment is shorter.
func field(fs []string, i int) string {
	if i < len(fs) {
		return fs[i]
	}
	return ""
}

// value returns component i (from 0) of a field's first repetition, first subcomponent,
// unescaped.
func (d ackDelims) value(f string, i int) string {
	rep, _, _ := strings.Cut(f, string(d.rep))
	c := field(strings.Split(rep, string(d.comp)), i)
	c, _, _ = strings.Cut(c, string(d.sub))
	return d.unescape(c)
}

// errText reads one ERR segment: its location (ERR-2, v2.5; else ERR-1's, v2.3) and its
// text (ERR-8 user message, else ERR-3's text, else ERR-1's code text), as "PID-3: text".
func (d ackDelims) errText(fs []string) string {
	rep, _, _ := strings.Cut(field(fs, 1), string(d.rep))
	err1 := strings.Split(rep, string(d.comp)) // ELD: segment^sequence^field^code&text&system
	text := d.unescape(field(fs, 8))
	if text == "" {
		text = d.value(field(fs, 3), 1)
	}
	if text == "" {
		code := strings.Split(field(err1, 3), string(d.sub))
		text = d.unescape(field(code, 1))
	}
	if text == "" {
		return ""
	}
	seg, fld := d.value(field(fs, 2), 0), d.value(field(fs, 2), 2)
	if seg == "" {
		seg, fld = d.unescape(field(err1, 0)), d.unescape(field(err1, 2))
	}
	switch {
	case seg != "" && fld != "" && fld != "0":
		return seg + "-" + fld + ": " + text
	case seg != "":
		return seg + ": " + text
	}
	return text
}

// unescape decodes \F\ \S\ \T\ \R\ \E\ and \.br\ (as a space), drops other escapes,
// keeps an unterminated one as text, and turns control characters into spaces.
func (d ackDelims) unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != d.esc {
			if c < 0x20 || c == 0x7f {
				c = ' '
			}
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+1:], d.esc)
		if end < 0 {
			b.WriteString(s[i:])
			break
		}
		switch s[i+1 : i+1+end] {
		case "F":
			b.WriteByte(d.field)
		case "S":
			b.WriteByte(d.comp)
		case "T":
			b.WriteByte(d.sub)
		case "R":
			b.WriteByte(d.rep)
		case "E":
			b.WriteByte(d.esc)
		case ".br":
			b.WriteByte(' ')
		}
		i += end + 1
	}
	return strings.TrimSpace(b.String())
}
