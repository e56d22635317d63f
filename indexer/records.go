package indexer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/chartscan/chartscan"
)

// ErrUnsupportedFormat is wrapped by ReadRecords errors for input in a format it
// recognizes (HL7 v2, XML) or cannot recognize, but cannot import.
var ErrUnsupportedFormat = errors.New("unsupported format")

// ReadRecords reads EMPI patients from r and calls fn for each one, in order. It sniffs
// the format: a FHIR R4 Bundle (JSON), FHIR NDJSON (one resource per line; resources
// other than Patient are skipped) or CSV with a header row naming at least the columns
// mrn, family, given and birth_date (also sex, street, city, postcode, state, phone, in
// any order; others are ignored). Every patient is normalized the same way. HL7 v2 input
// is refused with an error wrapping ErrHL7: its merges (A40) are not patients, so it is
// read with ReadHL7. The first bad
// record stops the import with a *chartscan.Error naming its line or entry, never its
// values; an error from fn is returned as it is.
func ReadRecords(r io.Reader, fn func(chartscan.Patient) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte{0xEF, 0xBB, 0xBF}) {
		br.Discard(3)
	}
	// Skip leading blank space, counting the lines it spans so errors name real lines.
	skipped := 0
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read records: %w", err)
		}
		if c == '\n' {
			skipped++
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			br.UnreadByte()
			break
		}
	}
	head, _ := br.Peek(5)
	switch {
	case looksLikeHL7(head):
		// Merges (A40) are not patients: a stream of patients would drop them silently.
		return &chartscan.Error{Code: chartscan.EInvalid,
			Message: "HL7 v2 ADT messages are read by the HL7 import (ReadHL7), which also applies merges",
			Err:     fmt.Errorf("%w: %w", ErrUnsupportedFormat, ErrHL7)}
	case head[0] == '<':
		return &chartscan.Error{Code: chartscan.EInvalid, Message: "XML import is not supported", Err: ErrUnsupportedFormat}
	case head[0] == '[':
		return &chartscan.Error{Code: chartscan.EInvalid, Message: "a JSON array is not a FHIR Bundle or NDJSON", Err: ErrUnsupportedFormat}
	case head[0] == '{':
		return readJSON(br, skipped, fn)
	}
	return readCSV(br, skipped, fn)
}

// invalid returns the user-safe error for a bad record; where says which one.
func invalid(where string, format string, args ...any) error {
	return chartscan.Errorf(chartscan.EInvalid, where+": "+format, args...)
}

// normalizePatient checks and normalizes a patient read from any format; parseBirth reads
// its birth date. The error names the field, never its value.
func normalizePatient(p chartscan.Patient, parseBirth func(string) (string, bool)) (chartscan.Patient, error) {
	clean := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	p.MRN = NormalizeMRN(strings.TrimSpace(p.MRN))
	p.Family = clean(p.Family)
	p.Given = clean(p.Given)
	p.Street, p.City, p.Postcode, p.State, p.Phone = clean(p.Street), clean(p.City), clean(p.Postcode), clean(p.State), clean(p.Phone)
	if p.MRN == "" {
		return p, errors.New("no MRN")
	}
	if p.Family == "" {
		return p, errors.New("no family name")
	}
	// An EMPI may hold a patient whose birth date is unknown (an unidentified trauma
	// patient); that is missing, not invalid, and matching simply has no DOB to use.
	if b := strings.TrimSpace(p.BirthDate); b != "" {
		d, ok := parseBirth(b)
		if !ok {
			return p, errors.New("invalid birth date")
		}
		p.BirthDate = d
	} else {
		p.BirthDate = ""
	}
	if sex, ok := NormalizeSex(p.Sex); ok {
		p.Sex = sex
	} else {
		p.Sex = "unknown"
	}
	return p, nil
}

// csvColumns are the columns ReadRecords reads from CSV; the first four are required.
var csvColumns = []string{"mrn", "family", "given", "birth_date", "sex", "street", "city", "postcode", "state", "phone"}

func readCSV(br *bufio.Reader, skipped int, fn func(chartscan.Patient) error) error {
	cr := csv.NewReader(br)
	cr.Comma = sniffComma(br)
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return csvError(err, skipped)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	for _, name := range csvColumns[:4] {
		if _, ok := col[name]; !ok {
			return chartscan.Errorf(chartscan.EInvalid, "csv header: missing column %q", name)
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return csvError(err, skipped)
		}
		lineNo, _ := cr.FieldPos(0)
		p, err := normalizePatient(chartscan.Patient{
			MRN: get(rec, "mrn"), Family: get(rec, "family"), Given: get(rec, "given"),
			BirthDate: get(rec, "birth_date"), Sex: get(rec, "sex"), Street: get(rec, "street"),
			City: get(rec, "city"), Postcode: get(rec, "postcode"), State: get(rec, "state"),
			Phone: get(rec, "phone"),
		}, ParseDate)
		if err != nil {
			return invalid(fmt.Sprintf("line %d", lineNo+skipped), "%v", err)
		}
		if err := fn(p); err != nil {
			return err
		}
	}
}

// sniffComma picks the delimiter the header line uses most: spreadsheets in many locales
// export with ';', and some EMPI tools with tabs.
func sniffComma(br *bufio.Reader) rune {
	head, _ := br.Peek(4096)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	comma, best := ',', bytes.Count(head, []byte(","))
	for _, c := range []rune{';', '\t'} {
		if n := bytes.Count(head, []byte(string(c))); n > best {
			comma, best = c, n
		}
	}
	return comma
}

// csvError turns a CSV parse error into a user-safe one: csv.ParseError names a line and
// a fixed reason, never the field's text.
func csvError(err error, skipped int) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return invalid(fmt.Sprintf("line %d", pe.Line+skipped), "%v", pe.Err)
	}
	if err == io.EOF {
		return nil // a file of blank lines holds no records
	}
	return fmt.Errorf("read csv: %w", err)
}
