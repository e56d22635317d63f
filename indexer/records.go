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

// BadRecord is a record of an EMPI file that cannot be imported: where it is and why.
// Neither names a value the record holds, so both are safe to show and to log.
type BadRecord struct {
	// Where is "line 12" (CSV, NDJSON; the line a record starts on), "entry[71]" (a
	// Bundle's entry, counted from 0 as FHIRPath does) or "line 3 entry[2]" (an entry of
	// a Bundle on an NDJSON line).
	Where string `json:"where"`
	// Reason is a fixed phrase: "no MRN", "invalid birth date", "not valid JSON", …
	Reason string `json:"reason"`
}

// String returns "where: reason".
func (b BadRecord) String() string { return b.Where + ": " + b.Reason }

// ReadRecords reads EMPI patients from r and calls fn for each one, in order. It sniffs
// the format: a FHIR R4 Bundle (JSON), FHIR NDJSON (one resource per line; resources
// other than Patient are skipped) or CSV with a header row naming at least the columns
// mrn, family, given and birth_date (also sex, street, city, postcode, state, phone, in
// any order; others are ignored). Every patient is normalized the same way; a record
// needs only an MRN: a family name, given name or birth date it lacks is left empty,
// and a birth date known only to the year or month is kept as YYYY or YYYY-MM. HL7 v2
// input is refused with an error wrapping ErrHL7: its merges are not patients, so it is
// read with ReadHL7. The first bad record stops the import with a
// *chartscan.Error naming its line or entry, never its values; an error from fn is
// returned as it is.
func ReadRecords(r io.Reader, fn func(chartscan.Patient) error) error {
	return ReadRecordsSkipping(r, fn, nil)
}

// ReadRecordsSkipping is ReadRecords that reads past the records it cannot import (no
// MRN, an impossible birth date, a line that is not a FHIR resource or has the wrong
// number of CSV fields): it calls skip with each and goes on with the next. A nil skip
// stops at the first, as ReadRecords does; an error from skip stops the read and is
// returned as it is. What spoils the whole file still stops it: a format it cannot
// read, a CSV header without a required column, a Bundle that is not valid JSON.
func ReadRecordsSkipping(r io.Reader, fn func(chartscan.Patient) error, skip func(BadRecord) error) error {
	rr := &recordReader{fn: fn, skip: skip}
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
	head, _ := br.Peek(4096) // comment lines may come before an HL7 message's MSH
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
		return rr.readJSON(br, skipped)
	}
	return rr.readCSV(br, skipped)
}

// recordReader hands the records of one file to fn and the bad ones to skip.
type recordReader struct {
	fn   func(chartscan.Patient) error
	skip func(BadRecord) error
}

// bad reports a bad record: to skip, or as the error that ends the read.
func (rr *recordReader) bad(where, reason string) error {
	if rr.skip == nil {
		return invalid(where, "%s", reason)
	}
	return rr.skip(BadRecord{Where: where, Reason: reason})
}

// patient normalizes a record and hands it over, or reports it as bad.
func (rr *recordReader) patient(p chartscan.Patient, where string, parseBirth func(string) (string, bool)) error {
	p, err := normalizePatient(p, parseBirth)
	if err != nil {
		return rr.bad(where, err.Error())
	}
	return rr.fn(p)
}

// invalid returns the user-safe error for a bad record; where says which one.
func invalid(where string, format string, args ...any) error {
	return chartscan.Errorf(chartscan.EInvalid, where+": "+format, args...)
}

// normalizePatient checks and normalizes a patient read from any format; parseBirth reads
// its birth date. Only the MRN is required: an EMPI holds patients without a name or a
// birth date (an unidentified trauma patient, a newborn, a merged-away stub), and what
// a record lacks stays empty for matching to treat as missing. The error names the
// field, never its value.
func normalizePatient(p chartscan.Patient, parseBirth func(string) (string, bool)) (chartscan.Patient, error) {
	clean := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	p.MRN = NormalizeMRN(strings.TrimSpace(p.MRN))
	p.Family = clean(p.Family)
	p.Given = clean(p.Given)
	p.Street, p.City, p.Postcode, p.State, p.Phone = clean(p.Street), clean(p.City), clean(p.Postcode), clean(p.State), clean(p.Phone)
	if p.MRN == "" {
		return p, errors.New("no MRN")
	}
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

func (rr *recordReader) readCSV(br *bufio.Reader, skipped int) error {
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
	parseBirth := parseBirthDate(ParseDate)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// csv.ParseError names a line and a fixed reason, never the field's text; the
			// reader goes on at the next record.
			if err := rr.bad(fmt.Sprintf("line %d", pe.StartLine+skipped), pe.Err.Error()); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read csv: %w", err)
		}
		lineNo, _ := cr.FieldPos(0)
		err = rr.patient(chartscan.Patient{
			MRN: get(rec, "mrn"), Family: get(rec, "family"), Given: get(rec, "given"),
			BirthDate: get(rec, "birth_date"), Sex: get(rec, "sex"), Street: get(rec, "street"),
			City: get(rec, "city"), Postcode: get(rec, "postcode"), State: get(rec, "state"),
			Phone: get(rec, "phone"),
		}, fmt.Sprintf("line %d", lineNo+skipped), parseBirth)
		if err != nil {
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

// csvError turns an error reading the CSV header into a user-safe one: csv.ParseError
// names a line and a fixed reason, never the field's text.
func csvError(err error, skipped int) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return invalid(fmt.Sprintf("line %d", pe.StartLine+skipped), "%v", pe.Err)
	}
	if err == io.EOF {
		return nil // a file of blank lines holds no records
	}
	return fmt.Errorf("read csv: %w", err)
}
