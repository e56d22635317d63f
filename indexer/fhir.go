package indexer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/chartscan/chartscan"
)

// fhirPatient is the part of a FHIR R4 Patient resource the EMPI import reads.
type fhirPatient struct {
	Identifier []struct {
		System string `json:"system"`
		Value  string `json:"value"`
		Type   struct {
			Coding []struct {
				Code string `json:"code"`
			} `json:"coding"`
		} `json:"type"`
	} `json:"identifier"`
	Name []struct {
		Use    string   `json:"use"`
		Family string   `json:"family"`
		Given  []string `json:"given"`
	} `json:"name"`
	BirthDate string `json:"birthDate"`
	Gender    string `json:"gender"`
	Address   []struct {
		Line       []string `json:"line"`
		City       string   `json:"city"`
		PostalCode string   `json:"postalCode"`
		State      string   `json:"state"`
	} `json:"address"`
	Telecom []struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"telecom"`
}

// fhirHead is just enough of any resource to know what it is. Resources other than
// Patient are not decoded further: their fields of the same names have other types.
type fhirHead struct {
	ResourceType string `json:"resourceType"`
}

type fhirBundle struct {
	ResourceType string `json:"resourceType"`
	Entry        []struct {
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

// readJSON reads FHIR JSON: NDJSON when the first line is a whole JSON value, otherwise
// one (pretty-printed) Bundle, which is decoded whole.
func readJSON(br *bufio.Reader, skipped int, fn func(chartscan.Patient) error) error {
	first, err := br.ReadBytes('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("read records: %w", err)
	}
	if json.Valid(bytes.TrimSpace(first)) {
		return readNDJSON(first, br, skipped, fn)
	}
	dec := json.NewDecoder(io.MultiReader(bytes.NewReader(first), br))
	var b fhirBundle
	if err := dec.Decode(&b); err != nil {
		return invalidJSON("bundle", err)
	}
	if b.ResourceType != "Bundle" {
		return chartscan.Errorf(chartscan.EInvalid, "json: not a FHIR Bundle or NDJSON")
	}
	return readBundle(b, "", fn)
}

// readNDJSON reads one resource per line, starting with first, which was already read.
func readNDJSON(first []byte, br *bufio.Reader, skipped int, fn func(chartscan.Patient) error) error {
	lineNo := skipped
	for raw := first; ; {
		lineNo++
		if err := readResource(bytes.TrimSpace(raw), fmt.Sprintf("line %d", lineNo), fn); err != nil {
			return err
		}
		var err error
		raw, err = br.ReadBytes('\n')
		if err == io.EOF && len(raw) == 0 {
			return nil
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read records: %w", err)
		}
	}
}

// readResource handles one NDJSON line: a Patient, a Bundle, or something to skip.
func readResource(raw []byte, where string, fn func(chartscan.Patient) error) error {
	if len(raw) == 0 {
		return nil
	}
	var head fhirHead
	if err := json.Unmarshal(raw, &head); err != nil {
		return invalidJSON(where, err)
	}
	switch head.ResourceType {
	case "Patient":
		return readPatient(raw, where, fn)
	case "Bundle":
		var b fhirBundle
		if err := json.Unmarshal(raw, &b); err != nil {
			return invalidJSON(where, err)
		}
		return readBundle(b, where+" ", fn)
	}
	return nil
}

// readBundle reads the Patient entries of a Bundle; errors name the entry by its index,
// as FHIRPath does (entry[0] is the first).
func readBundle(b fhirBundle, prefix string, fn func(chartscan.Patient) error) error {
	for i, e := range b.Entry {
		where := fmt.Sprintf("%sentry[%d]", prefix, i)
		if len(e.Resource) == 0 {
			continue
		}
		var head fhirHead
		if err := json.Unmarshal(e.Resource, &head); err != nil {
			return invalidJSON(where, err)
		}
		if head.ResourceType != "Patient" {
			continue
		}
		if err := readPatient(e.Resource, where, fn); err != nil {
			return err
		}
	}
	return nil
}

func readPatient(raw []byte, where string, fn func(chartscan.Patient) error) error {
	var fp fhirPatient
	if err := json.Unmarshal(raw, &fp); err != nil {
		return invalidJSON(where, err)
	}
	p, err := normalizePatient(fp.patient(), func(s string) (string, bool) { return s, isISODate(s) })
	if err != nil {
		return invalid(where, "%v", err)
	}
	return fn(p)
}

// invalidJSON reports bad JSON without the decoder's message, which can quote the input.
func invalidJSON(where string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return invalid(where, "field %s has the wrong JSON type", te.Field)
	}
	return invalid(where, "not valid JSON")
}

// patient maps a FHIR Patient to the EMPI's patient, before normalization.
func (fp fhirPatient) patient() chartscan.Patient {
	p := chartscan.Patient{BirthDate: fp.BirthDate, Sex: fp.Gender}
	p.MRN = fp.mrn()
	if len(fp.Name) > 0 {
		n := fp.Name[0]
		for _, c := range fp.Name {
			if c.Use == "official" {
				n = c
				break
			}
		}
		p.Family, p.Given = n.Family, strings.Join(n.Given, " ")
	}
	if len(fp.Address) > 0 {
		a := fp.Address[0]
		p.Street, p.City, p.Postcode, p.State = strings.Join(a.Line, ", "), a.City, a.PostalCode, a.State
	}
	for _, t := range fp.Telecom {
		if t.System == "phone" && t.Value != "" {
			p.Phone = t.Value
			break
		}
	}
	return p
}

// mrn picks the medical record number: the identifier typed "MR" (HL7 v2 table 0203),
// else the one whose system names an MRN, else the first.
func (fp fhirPatient) mrn() string {
	for _, id := range fp.Identifier {
		for _, c := range id.Type.Coding {
			if c.Code == "MR" && id.Value != "" {
				return id.Value
			}
		}
	}
	for _, id := range fp.Identifier {
		if strings.Contains(strings.ToLower(id.System), "mrn") && id.Value != "" {
			return id.Value
		}
	}
	for _, id := range fp.Identifier {
		if id.Value != "" {
			return id.Value
		}
	}
	return ""
}
