package indexer

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/chartscan/chartscan"
)

// AIRA expectation labels (EXPECT lines of the AIRA patient-matching test suites).
const (
	AIRAMatch         = "Match"
	AIRAPossibleMatch = "Possible Match"
	AIRANotAMatch     = "Not a Match"
	AIRANotSure       = "Not Sure"
)

// AIRAReport counts how the AIRA pairs of one test file would be filed: per EXPECT label,
// how many pairs Decide sends to auto, review and unmatched.
type AIRAReport struct {
	Cases  int
	Counts map[string]map[chartscan.PageStatus]int
	// NotAMatchAuto lists the "Not a Match" pairs that would be filed automatically, with
	// the candidate's evidence: each one is a page filed to the wrong patient.
	NotAMatchAuto []AIRAPair
	// MatchUnmatched lists the test ids of "Match" pairs that would be rejected outright.
	MatchUnmatched []string
}

// Table returns the report as a small fixed-width table, one row per label.
func (r AIRAReport) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-15s %6s %6s %9s %6s\n", "expect", "auto", "review", "unmatched", "total")
	labels := []string{AIRAMatch, AIRAPossibleMatch, AIRANotAMatch, AIRANotSure}
	for l := range r.Counts {
		if !slices.Contains(labels, l) {
			labels = append(labels, l)
		}
	}
	for _, l := range labels {
		c, ok := r.Counts[l]
		if !ok {
			continue
		}
		a, rv, u := c[chartscan.StatusAuto], c[chartscan.StatusReview], c[chartscan.StatusUnmatched]
		fmt.Fprintf(&b, "%-15s %6d %6d %9d %6d\n", l, a, rv, u, a+rv+u)
	}
	fmt.Fprintf(&b, "%-15s %6s %6s %9s %6d\n", "cases", "", "", "", r.Cases)
	return b.String()
}

// AIRAPair is one scored AIRA pair: its test id ("D-1124") and the candidate PATIENT A
// made against PATIENT B.
type AIRAPair struct {
	ID        string
	Candidate chartscan.Candidate
}

// RunAIRA scores every pair of an AIRA patient-matching test file (TEST, EXPECT, PATIENT
// A, PATIENT B lines; fields k=v separated by commas): PATIENT A is the EMPI record,
// PATIENT B what a page shows, read with full confidence (names, birthDate, gender, mrns,
// address, phone). Each pair is decided alone, as a segment with one candidate.
func RunAIRA(r io.Reader, m Model) (AIRAReport, error) {
	rep := AIRAReport{Counts: map[string]map[chartscan.PageStatus]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var id, expect string
	var a chartscan.Patient
	haveA := false
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		key, val, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch key {
		case "TEST":
			id, expect, haveA = strings.SplitN(val, ":", 2)[0], "", false
		case "EXPECT":
			expect = strings.TrimSpace(val)
		case "PATIENT A":
			a, haveA = airaPatient(airaFields(val)), true
		case "PATIENT B":
			if !haveA || expect == "" {
				return rep, chartscan.Errorf(chartscan.EInvalid, "line %d: PATIENT B without TEST, EXPECT and PATIENT A", lineNo)
			}
			c := m.Score(airaEvidence(airaFields(val)), a, nil)
			f := m.Decide([]chartscan.Candidate{c})
			if rep.Counts[expect] == nil {
				rep.Counts[expect] = map[chartscan.PageStatus]int{}
			}
			rep.Counts[expect][f.Status]++
			rep.Cases++
			switch {
			case expect == AIRANotAMatch && f.Status == chartscan.StatusAuto:
				rep.NotAMatchAuto = append(rep.NotAMatchAuto, AIRAPair{id, c})
			case expect == AIRAMatch && f.Status == chartscan.StatusUnmatched:
				rep.MatchUnmatched = append(rep.MatchUnmatched, id)
			}
			haveA = false
		}
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("read aira: %w", err)
	}
	return rep, nil
}

// airaFields splits "k=v,k=v," into a map; a piece without "=" belongs to the value
// before it (a comma inside a value).
func airaFields(s string) map[string]string {
	out := map[string]string{}
	last := ""
	for _, piece := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(piece, "=")
		if !ok {
			if last != "" && piece != "" {
				out[last] += "," + piece
			}
			continue
		}
		out[k], last = v, k
	}
	return out
}

// airaDate turns YYYYMMDD into YYYY-MM-DD, "" if it is not a date.
func airaDate(s string) string {
	if len(s) != 8 || !onlyDigits(s) {
		return ""
	}
	d := s[:4] + "-" + s[4:6] + "-" + s[6:]
	if !isISODate(d) {
		return ""
	}
	return d
}

func airaPatient(f map[string]string) chartscan.Patient {
	sex, _ := NormalizeSex(f["gender"])
	return chartscan.Patient{
		MRN: NormalizeMRN(f["mrns"]), Family: f["nameLast"],
		Given:     strings.TrimSpace(f["nameFirst"] + " " + f["nameMiddle"]),
		BirthDate: airaDate(f["birthDate"]), Sex: sex,
		Street: f["addressStreet1"], City: f["addressCity"], Postcode: f["addressZip"],
		State: f["addressState"], Phone: f["phone"],
	}
}

func airaEvidence(f map[string]string) Evidence {
	r := func(v string) Reading {
		if v == "" {
			return Reading{}
		}
		return Reading{v, 1}
	}
	sex, _ := NormalizeSex(f["gender"])
	if sex == "unknown" {
		sex = ""
	}
	return Evidence{
		MRN: r(NormalizeMRN(f["mrns"])), Family: r(NormalizeName(f["nameLast"])),
		Given: r(NormalizeName(f["nameFirst"])), DOB: r(airaDate(f["birthDate"])), Sex: r(sex),
		Street: r(normalizeStreet(f["addressStreet1"])), City: r(NormalizeName(f["addressCity"])),
		Postcode: r(normalizePostcode(f["addressZip"])), Phone: r(normalizePhone(f["phone"])),
	}
}
