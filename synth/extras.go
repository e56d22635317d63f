package synth

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Extras are the distractors a real form prints near the patient's identifiers: other
// people, other numbers, other dates. None identifies the patient. Empty fields are not
// printed, so the zero Extras print nothing.
type Extras struct {
	Attending string // the doctor, "Given Family"
	Account   string // billing account number: digits, never an EMPI MRN
	Visit     string // visit or encounter number: digits or a letter and digits, never an EMPI MRN
	Location  string // ward or clinic, "4W", "MED CLINIC"
	Phone     string // the patient's phone, "(555) 555-0123": ten digits, so never an MRN
	Admitted  string // admission date, YYYY-MM-DD, on or a few days before the date of service
	Printed   string // when the form was printed, "YYYY-MM-DD HH:MM", on or after the date of service
}

// doctors are fictional attending physicians.
var doctors = strings.Fields(`Amara_Okafor Lena_Lindqvist Kenji_Nakamura Rosa_Castellano Tamas_Varga
	Kwame_Osei Helen_Whitfield Omar_Haddad Piotr_Kowalski Ines_Ferreira Ruth_Abernathy
	Samuel_Example Nadia_Sample Victor_Moreau Grace_Brennan Ilse_Testa`)

var locations = []string{"4W", "5 EAST", "3N-312", "ICU 2", "ED", "MED CLINIC", "ORTHO CLINIC",
	"CARDIOLOGY OPD", "SURG 6", "WARD 7B"}

// NewExtras draws the distractors of one identifying page dated dateOfService
// (YYYY-MM-DD). Account and visit numbers are never in used, which holds every EMPI MRN,
// and are added to it so no two pages share one.
func NewExtras(rng *rand.Rand, used map[string]bool, dateOfService string) Extras {
	e := Extras{
		Attending: strings.ReplaceAll(doctors[rng.IntN(len(doctors))], "_", " "),
		Location:  locations[rng.IntN(len(locations))],
		Phone:     fmt.Sprintf("(555) 555-%04d", 100+rng.IntN(100)), // 555-0100..0199: reserved for fiction
	}
	// Account numbers come in the widths hospitals use, 9 digits (an MRN's) among them.
	switch rng.IntN(3) {
	case 0:
		e.Account = freeNumber(rng, used, "%08d", 1_000_000) // "00123456"
	case 1:
		e.Account = freeNumber(rng, used, "%09d", 1_000_000_000)
	default:
		e.Account = freeNumber(rng, used, "%010d", 10_000_000_000)
	}
	switch rng.IntN(3) {
	case 0:
		e.Visit = "E" + freeNumber(rng, used, "%08d", 100_000_000)
	case 1:
		e.Visit = freeNumber(rng, used, "%07d", 10_000_000)
	default:
		e.Visit = freeNumber(rng, used, "%09d", 1_000_000_000)
	}
	if t, err := time.Parse(time.DateOnly, dateOfService); err == nil {
		e.Admitted = t.AddDate(0, 0, -rng.IntN(6)).Format(time.DateOnly)
		printed := t.AddDate(0, 0, rng.IntN(30)).Add(time.Duration(7*60+rng.IntN(12*60)) * time.Minute)
		e.Printed = printed.Format("2006-01-02 15:04")
	}
	return e
}

// freeNumber formats a random number below n with format until the result (its digits,
// without a letter prefix added later) is not in used, adds it to used and returns it.
func freeNumber(rng *rand.Rand, used map[string]bool, format string, n int64) string {
	for {
		s := fmt.Sprintf(format, rng.Int64N(n))
		if !used[s] {
			used[s] = true
			return s
		}
	}
}

// Doctor name styles.
const (
	docTitle   = iota // Dr. A. Okafor
	docCaps           // DR A. OKAFOR
	docSurname        // OKAFOR, A
	docMD             // A. Okafor, MD
)

// doctor formats a "Given Family" name in style; an empty name stays empty.
func doctor(name string, style int) string {
	given, family, ok := strings.Cut(name, " ")
	if !ok || given == "" {
		return ""
	}
	initial := given[:1] + "."
	switch style {
	case docCaps:
		return "DR " + initial + " " + strings.ToUpper(family)
	case docSurname:
		return strings.ToUpper(family) + ", " + given[:1]
	case docMD:
		return initial + " " + family + ", MD"
	}
	return "Dr. " + initial + " " + family
}
