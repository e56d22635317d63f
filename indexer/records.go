package indexer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/transform"

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
	return ReadRecordsWith(r, RecordOptions{}, fn, skip)
}

// RecordOptions are what an import may say about its file.
type RecordOptions struct {
	// Encoding names the text encoding of the file (an IANA name or alias: latin1,
	// ISO-8859-15, windows-1252, utf-8). Empty reads UTF-8, and a byte that is not part
	// of valid UTF-8 as Windows-1252, which Latin-1 files read as too.
	Encoding string
	// Columns maps the import's CSV columns (mrn, family, given, birth_date, sex, street,
	// city, postcode, state, phone) to the file's own headers; see ParseColumnMap. With a
	// mapping only mrn is a required column.
	Columns map[string]string
	// MRNSystem is the FHIR identifier.system of the facility's MRNs: the identifier of
	// that system is the MRN, and a Patient without one is a bad record. Empty: the
	// identifier typed MR, else one whose system names an MRN, else the first.
	MRNSystem string
	// Replaced, when set, is called after every record was read, for each FHIR
	// Patient.link of type replaced-by: the patient merged was replaced by survivor, both
	// by MRN. A link to a patient the file does not hold is a bad record.
	Replaced func(merged, survivor string) error
}

// ReadRecordsWith is ReadRecordsSkipping for a file the options describe.
func ReadRecordsWith(r io.Reader, opts RecordOptions, fn func(chartscan.Patient) error, skip func(BadRecord) error) error {
	return ReadEMPIRecords(r, opts, func(rec Record) error { return fn(rec.Patient) }, skip)
}

// SystemID is an identifier by the system or assigning authority that issued it (FHIR
// identifier.system, HL7 CX-4; else its type, CX-5 or identifier.type).
type SystemID struct {
	System, Value string
}

// Record is a patient as an EMPI file gives it: the patient, the system of its MRN (""
// when the file names none) and its other identifiers, normalized as MRNs are.
type Record struct {
	chartscan.Patient
	MRNSystem string
	IDs       []SystemID
}

// ReadEMPIRecords is ReadRecordsWith that hands over each patient with its MRN's system
// and its other identifiers.
func ReadEMPIRecords(r io.Reader, opts RecordOptions, fn func(Record) error, skip func(BadRecord) error) error {
	r, err := decodingReader(r, opts.Encoding)
	if err != nil {
		return err
	}
	rr := &recordReader{fn: fn, skip: skip, opts: opts, ids: map[string]string{}}
	if err := rr.read(r); err != nil {
		return err
	}
	return rr.resolveLinks()
}

func (rr *recordReader) read(r io.Reader) error {
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
	fn   func(Record) error
	skip func(BadRecord) error
	opts RecordOptions
	// ids maps the references a Patient.link may use (Patient/id, a Bundle entry's
	// fullUrl) to the MRN of the patient read under them; links waits for them.
	ids   map[string]string
	links []fhirLink
}

// bad reports a bad record: to skip, or as the error that ends the read.
func (rr *recordReader) bad(where, reason string) error {
	if rr.skip == nil {
		return invalid(where, "%s", reason)
	}
	return rr.skip(BadRecord{Where: where, Reason: reason})
}

// patient normalizes a record and hands it over, or reports it as bad.
func (rr *recordReader) patient(rec Record, where string, parseBirth func(string) (string, bool)) error {
	p, err := normalizePatient(rec.Patient, parseBirth)
	if err != nil {
		return rr.bad(where, err.Error())
	}
	rec.Patient = p
	rec.IDs = normalizeIDs(rec.IDs, p.MRN, rec.MRNSystem)
	return rr.fn(rec)
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
	// PostgreSQL text holds neither NUL nor invalid UTF-8: such bytes would fail the whole
	// import with a database error quoting the record.
	clean := func(s string) string {
		s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
		return strings.Join(strings.Fields(s), " ")
	}
	p.MRN = NormalizeMRN(clean(p.MRN))
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
	headerOf := func(name string) string {
		if h, ok := rr.opts.Columns[name]; ok {
			return strings.ToLower(strings.TrimSpace(h))
		}
		return name
	}
	required := csvColumns[:4]
	if len(rr.opts.Columns) > 0 {
		required = csvColumns[:1]
	}
	for _, name := range required {
		if _, ok := col[headerOf(name)]; !ok {
			return chartscan.Errorf(chartscan.EInvalid, "csv header: missing column %q", headerOf(name))
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[headerOf(name)]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	parseDay := parseBirthDate(ParseDate)
	parseBirth := func(s string) (string, bool) {
		if len(s) == 8 && onlyDigits(s) {
			return parseHL7Date(s) // YYYYMMDD, as FEBRL and many exports write it
		}
		return parseDay(s)
	}
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
		err = rr.patient(Record{Patient: chartscan.Patient{
			MRN: get(rec, "mrn"), Family: get(rec, "family"), Given: get(rec, "given"),
			BirthDate: get(rec, "birth_date"), Sex: get(rec, "sex"), Street: get(rec, "street"),
			City: get(rec, "city"), Postcode: get(rec, "postcode"), State: get(rec, "state"),
			Phone: get(rec, "phone"),
		}}, fmt.Sprintf("line %d", lineNo+skipped), parseBirth)
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

// CSVLayouts are the column mappings of other tools' CSV exports, named for --map:
// Synthea's patients.csv (its Id is the MRN) and FEBRL's generated data sets.
var CSVLayouts = map[string]map[string]string{
	"synthea": {"mrn": "Id", "family": "LAST", "given": "FIRST", "birth_date": "BIRTHDATE", "sex": "GENDER",
		"street": "ADDRESS", "city": "CITY", "state": "STATE", "postcode": "ZIP"},
	"febrl": {"mrn": "rec_id", "family": "surname", "given": "given_name", "birth_date": "date_of_birth",
		"street": "address_1", "city": "suburb", "postcode": "postcode", "state": "state", "phone": "phone_number"},
}

// ParseColumnMap reads a column mapping: the name of a layout in CSVLayouts, or pairs
// "column=HEADER" separated by commas or new lines (a mapping file's content; lines
// starting with # are comments), column one of the import's CSV columns.
func ParseColumnMap(s string) (map[string]string, error) {
	if l, ok := CSVLayouts[strings.ToLower(strings.TrimSpace(s))]; ok {
		return l, nil
	}
	known := map[string]bool{}
	for _, c := range csvColumns {
		known[c] = true
	}
	out := map[string]string{}
	for _, pair := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		pair = strings.TrimSpace(pair)
		if pair == "" || strings.HasPrefix(pair, "#") {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || v == "" {
			return nil, chartscan.Errorf(chartscan.EInvalid, "column map: want column=HEADER, got %q", pair)
		}
		if !known[k] {
			return nil, chartscan.Errorf(chartscan.EInvalid, "column map: %q is not a column (want one of %s)", k, strings.Join(csvColumns, ", "))
		}
		out[k] = v
	}
	if _, ok := out["mrn"]; !ok {
		return nil, chartscan.Errorf(chartscan.EInvalid, "column map: no mrn=HEADER")
	}
	return out, nil
}

// decodingReader returns r decoded from the named encoding to UTF-8; with no name, bytes
// that are not valid UTF-8 are read as Windows-1252.
func decodingReader(r io.Reader, name string) (io.Reader, error) {
	if strings.TrimSpace(name) == "" {
		return &fallbackReader{r: r}, nil
	}
	enc, err := ianaindex.IANA.Encoding(strings.TrimSpace(name))
	if err != nil || enc == nil {
		if n := strings.ToLower(strings.TrimSpace(name)); n == "latin1" || n == "latin-1" {
			enc = charmap.ISO8859_1
		} else {
			return nil, chartscan.Errorf(chartscan.EInvalid, "unknown encoding %q (want e.g. utf-8, latin1, windows-1252, iso-8859-15)", name)
		}
	}
	return transform.NewReader(r, enc.NewDecoder()), nil
}

// fallbackReader passes valid UTF-8 through and reads every other byte as Windows-1252:
// a CSV saved by a spreadsheet in a Western locale, Latin-1 or Windows-1252, imports
// with its accents, and a UTF-8 file is unchanged.
type fallbackReader struct {
	r   io.Reader
	in  []byte // read, not yet converted: at most an incomplete rune at the end
	out []byte // converted, not yet returned
	err error
	buf [32 << 10]byte
}

func (f *fallbackReader) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		if f.err != nil && len(f.in) == 0 {
			return 0, f.err
		}
		if f.err == nil {
			n, err := f.r.Read(f.buf[:])
			f.in = append(f.in, f.buf[:n]...)
			f.err = err
		}
		in := f.in
		for len(in) > 0 {
			r, size := utf8.DecodeRune(in)
			if r == utf8.RuneError && size <= 1 {
				if !utf8.FullRune(in) && f.err == nil {
					break // may complete with the next read
				}
				dec, _ := charmap.Windows1252.NewDecoder().Bytes(in[:1])
				f.out = append(f.out, dec...)
				in = in[1:]
				continue
			}
			f.out = append(f.out, in[:size]...)
			in = in[size:]
		}
		f.in = append(f.in[:0], in...)
		if f.err != nil && len(f.in) > 0 && len(f.out) == 0 {
			continue
		}
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}

// normalizeIDs normalizes other identifiers as MRNs are and drops the empty ones, the
// repeats and the MRN itself.
func normalizeIDs(ids []SystemID, mrn, mrnSystem string) []SystemID {
	var out []SystemID
	seen := map[SystemID]bool{}
	for _, id := range ids {
		id = SystemID{System: strings.TrimSpace(id.System), Value: NormalizeMRN(strings.TrimSpace(id.Value))}
		if id.Value == "" || seen[id] || (id.Value == mrn && strings.EqualFold(id.System, mrnSystem)) {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out
}
