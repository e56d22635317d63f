package synth

import (
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/chartscan/chartscan"
)

// ErrNoPeople is returned when the input holds no usable identity.
var ErrNoPeople = errors.New("no usable identities")

// Person is one synthetic patient: the EMPI record and the identity as printed on the
// chart. Variants are the other rows of the same Splink cluster (typos, swapped dates,
// missing fields), each with the person's MRN and sex, so a caller can set Printed to a
// noisier version.
type Person struct {
	EMPI     chartscan.Patient
	Printed  chartscan.Patient
	Cluster  string
	Variants []chartscan.Patient
}

// EMPIRecord chooses which version of a person a generated EMPI holds.
type EMPIRecord int

const (
	// GoldenRecord is what a master patient index keeps after survivorship: the name
	// (family and given together), the birth date and the city that most rows of the
	// cluster carry, ties to the value that got there first. Splink's rows are that
	// person's records in several source systems; most carry the right value of each.
	GoldenRecord EMPIRecord = iota
	// FirstRecord is the first complete row as written, defects and all: about two
	// records in five differ from the golden record in a name or the birth date (a
	// swapped name, a typo, another date) — a stress setting, far more defects than a
	// curated index holds.
	FirstRecord
)

// ParseEMPIRecord reads "golden" or "first".
func ParseEMPIRecord(s string) (EMPIRecord, error) {
	switch s {
	case "golden", "":
		return GoldenRecord, nil
	case "first":
		return FirstRecord, nil
	}
	return 0, fmt.Errorf("EMPI record %q: want golden or first", s)
}

// LoadSplink reads Splink's fake_1000 CSV (unique_id,first_name,surname,dob,city,email,
// cluster) and returns one Person per cluster that has a complete row (first name,
// surname, valid dob), in order of first appearance. The cluster's version chosen by
// rec becomes both EMPI and Printed; the rows that differ from it become Variants. MRNs
// are 8 random digits plus a Luhn check digit, unique and deterministic for mrnSeed. Sex
// is derived from the first name (synthetic data: a guess is fine).
func LoadSplink(r io.Reader, mrnSeed int64, rec EMPIRecord) ([]Person, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read splink header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, name := range []string{"first_name", "surname", "dob", "city", "cluster"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("splink csv: missing column %q", name)
		}
	}
	type cluster struct {
		id   string
		rows []chartscan.Patient
	}
	var order []*cluster
	byID := map[string]*cluster{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read splink row: %w", err)
		}
		id := rec[col["cluster"]]
		c := byID[id]
		if c == nil {
			c = &cluster{id: id}
			byID[id] = c
			order = append(order, c)
		}
		c.rows = append(c.rows, chartscan.Patient{
			Given:     strings.TrimSpace(rec[col["first_name"]]),
			Family:    strings.TrimSpace(rec[col["surname"]]),
			BirthDate: strings.TrimSpace(rec[col["dob"]]),
			City:      strings.TrimSpace(rec[col["city"]]),
		})
	}

	rng := rand.New(rand.NewPCG(uint64(mrnSeed), 0x6d726e)) // "mrn"
	used := map[string]bool{}
	var people []Person
	for _, c := range order {
		best := -1
		for i, p := range c.rows {
			if complete(p) {
				best = i
				break
			}
		}
		if best < 0 {
			continue
		}
		mrn := newMRN(rng, used)
		emp := c.rows[best]
		if rec == GoldenRecord {
			emp = golden(c.rows)
		}
		emp.MRN = mrn
		emp.Sex = sexOf(emp.Given)
		var variants []chartscan.Patient
		for _, v := range c.rows {
			v.MRN, v.Sex = mrn, emp.Sex
			if v == emp {
				continue
			}
			variants = append(variants, v)
		}
		people = append(people, Person{EMPI: emp, Printed: emp, Cluster: c.id, Variants: variants})
	}
	if len(people) == 0 {
		return nil, ErrNoPeople
	}
	return people, nil
}

// golden returns the cluster's record as an EMPI's survivorship keeps it: the name most
// rows carry, family and given together (so that rows with the names the other way round
// cannot make "Brown Brown" of "Florence Brown"), among names carried equally often the
// one whose family and given names most rows carry each; the birth date most rows carry
// (of the valid ones) and the city most rows carry; ties to the value seen first. At
// least one row is complete, so the result is.
func golden(rows []chartscan.Patient) chartscan.Patient {
	mode := func(get func(chartscan.Patient) string) string {
		count := map[string]int{}
		best := ""
		for _, r := range rows {
			v := get(r)
			if v == "" {
				continue
			}
			count[v]++
			if count[v] > count[best] {
				best = v
			}
		}
		return best
	}
	fam, giv, pair := map[string]int{}, map[string]int{}, map[[2]string]int{}
	for _, r := range rows {
		fam[r.Family]++
		giv[r.Given]++
		pair[[2]string{r.Family, r.Given}]++
	}
	var family, given string
	bestPair, bestParts := 0, 0
	for _, r := range rows {
		if r.Family == "" || r.Given == "" {
			continue
		}
		n, parts := pair[[2]string{r.Family, r.Given}], fam[r.Family]+giv[r.Given]
		if n > bestPair || n == bestPair && parts > bestParts {
			family, given, bestPair, bestParts = r.Family, r.Given, n, parts
		}
	}
	return chartscan.Patient{
		Family: family,
		Given:  given,
		BirthDate: mode(func(p chartscan.Patient) string {
			if _, err := time.Parse(time.DateOnly, p.BirthDate); err != nil {
				return ""
			}
			return p.BirthDate
		}),
		City: mode(func(p chartscan.Patient) string { return p.City }),
	}
}

func complete(p chartscan.Patient) bool {
	if p.Given == "" || p.Family == "" {
		return false
	}
	_, err := time.Parse(time.DateOnly, p.BirthDate)
	return err == nil
}

// newMRN draws 8 digits (no leading zero, so the MRN survives a trip through a
// spreadsheet) and appends the Luhn check digit.
func newMRN(rng *rand.Rand, used map[string]bool) string {
	for {
		body := fmt.Sprintf("%08d", 10_000_000+rng.IntN(90_000_000))
		mrn := body + string(rune('0'+luhnDigit(body)))
		if !used[mrn] {
			used[mrn] = true
			return mrn
		}
	}
}

// luhnDigit returns the Luhn mod-10 check digit for a string of decimal digits.
func luhnDigit(body string) int {
	sum := 0
	double := true // the rightmost body digit is doubled once the check digit is appended
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return (10 - sum%10) % 10
}

// ValidMRN reports whether mrn is 9 decimal digits whose last is the Luhn check digit of
// the first 8.
func ValidMRN(mrn string) bool {
	if len(mrn) != 9 {
		return false
	}
	for _, r := range mrn {
		if r < '0' || r > '9' {
			return false
		}
	}
	return int(mrn[8]-'0') == luhnDigit(mrn[:8])
}

// femaleGiven and maleGiven are the first names of fake_1000 by sex, roughly most
// common first: sexOf uses them as sets, Population as ranks.
var femaleGiven = strings.Fields(`Olivia Jessica Elizabeth Isla Amelia Lola Isabelle Scarlett Evie
	Lily Darcy Charlotte Arabella Rosie Matilda Grace Freya Eliza Maya Maryam Maisie Ivy
	Evelyn Erin Emma Eleanor Aisha Sofia Poppy Nancy Mia Maddison Lydia Lottie Lexi Julia
	Holly Hannah Daisy Anna Aira Violet Sarah Rose Lucy Leah Isabella Imogen Heidi Francesca
	Florence Eva Emily Ellie Ella Aria Amelie Amber Willow Robyn Molly Mila Georgia Harper`)

var maleGiven = strings.Fields(`Oliver Jacob Freddie James George Alfie Theodore Logan Mason Henry
	Harry Jayden Jackson Harrison Reuben Noah Michael Dylan Charlie Adam Thomas Ryan Riley
	Luke Kai Joshua Isaac Harley Caleb Arlo William Toby Samuel Reggie Mohammed Leon Jaxon
	Hugo Harvey Finley Elliott Benjamin Theo Robert Oscar Ollie Muhammad Luca Leo Joseph
	Arthur Archie Teddy Sebastian Hunter Gregory Elliot Alexander Ahmed Louis Lucas David
	Edward Gabriel Rob Ronnie Owen`)

// femaleNames and maleNames decide sex from a first name; names in neither fall back to
// a hash.
var femaleNames, maleNames = setOf(femaleGiven), setOf(maleGiven)

func setOf(names []string) map[string]bool {
	m := map[string]bool{}
	for _, f := range names {
		m[f] = true
	}
	return m
}

func sexOf(given string) string {
	switch {
	case femaleNames[given]:
		return "female"
	case maleNames[given]:
		return "male"
	}
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(given)))
	if h.Sum32()%2 == 0 {
		return "female"
	}
	return "male"
}
