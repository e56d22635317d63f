package indexer

import (
	"errors"
	"fmt"
	"maps"
	"math"
)

// Fields a candidate is compared on, as they appear in chartscan.Evidence.Field.
const (
	FieldMRN      = "mrn"
	FieldFamily   = "family"
	FieldGiven    = "given"
	FieldDOB      = "dob"
	FieldSex      = "sex"
	FieldStreet   = "street"
	FieldCity     = "city"
	FieldPostcode = "postcode"
	FieldPhone    = "phone"
)

// Agreement levels, as they appear in chartscan.Evidence.Level and in Model.Fields.
const (
	LevelExact              = "exact"
	LevelCheckDigitRepaired = "check_digit_repaired" // the page's MRN fails its check digit; this record's MRN is the one repair that passes
	LevelOCRConfusable      = "ocr_confusable"       // one OCR confusion (0/O, 1/l, 5/S…) or one adjacent transposition apart
	LevelSwapped            = "swapped"              // family and given name read the other way round
	LevelJW92               = "jaro_winkler_92"      // Jaro–Winkler similarity at least 0.92
	LevelJW85               = "jaro_winkler_85"      // Jaro–Winkler similarity at least 0.85, or a typing slip (typingSlip)
	LevelPhonetic           = "phonetic"             // same NYSIIS code
	LevelInitial            = "initial"              // one side is an initial that fits the other
	LevelDayMonthSwapped    = "day_month_swapped"
	LevelOneDigit           = "one_digit" // one digit of YYYYMMDD differs
	LevelOneDay             = "one_day"   // a day apart
	LevelYearOnly           = "year_only"
	LevelDisagree           = "disagree" // both sides present and different
	LevelMissing            = "missing"  // absent on the page or in the record: weight 0
)

// fieldLevels lists each field's levels from the strongest agreement to disagreement;
// the m and u of one field each sum to 1 over these levels.
var fieldLevels = map[string][]string{
	FieldMRN:      {LevelExact, LevelCheckDigitRepaired, LevelOCRConfusable, LevelDisagree},
	FieldFamily:   {LevelExact, LevelSwapped, LevelJW92, LevelJW85, LevelPhonetic, LevelInitial, LevelDisagree},
	FieldGiven:    {LevelExact, LevelSwapped, LevelJW92, LevelJW85, LevelPhonetic, LevelInitial, LevelDisagree},
	FieldDOB:      {LevelExact, LevelDayMonthSwapped, LevelOneDay, LevelOneDigit, LevelYearOnly, LevelDisagree},
	FieldSex:      {LevelExact, LevelDisagree},
	FieldStreet:   {LevelExact, LevelJW92, LevelDisagree},
	FieldCity:     {LevelExact, LevelDisagree},
	FieldPostcode: {LevelExact, LevelDisagree},
	FieldPhone:    {LevelExact, LevelDisagree},
}

// fieldOrder is the order of a candidate's evidence.
var fieldOrder = []string{FieldMRN, FieldFamily, FieldGiven, FieldDOB, FieldSex, FieldStreet, FieldCity, FieldPostcode, FieldPhone}

// Probs is the pair of Fellegi–Sunter probabilities of one agreement level: M, that a
// true match shows it; U, that two different people show it by chance.
type Probs struct {
	M float64 `json:"m"`
	U float64 `json:"u"`
}

// Model is a Fellegi–Sunter matching model: per field the m and u of each agreement
// level, and the decision settings Decide applies to the scores. Weights are in bits
// (log2 of likelihood ratios), so they add up and a threshold reads as odds: 30 bits is
// a likelihood ratio of about 10^9 for "the same patient" over "someone else".
type Model struct {
	// Fields maps a field (FieldMRN, …) to its levels (LevelExact, …) and their m and u.
	Fields map[string]map[string]Probs `json:"fields"`
	// AutoWeight is the score a candidate needs to be filed without a reviewer.
	AutoWeight float64 `json:"auto_weight"`
	// Margin is how many bits the best candidate must lead the runner-up by to be filed.
	Margin float64 `json:"margin"`
	// ReviewWeight is the score below which a candidate is not plausible: a segment whose
	// best candidate scores less is unmatched.
	ReviewWeight float64 `json:"review_weight"`
	// MRNConflictWeight is the score a candidate whose MRN disagrees with the page's must
	// reach to be filed without a reviewer: name and birth date alone never do.
	MRNConflictWeight float64 `json:"mrn_conflict_weight"`
	// CheckDigit is the facility's MRN check-digit scheme: "luhn" or "none".
	CheckDigit string `json:"check_digit"`
	// SurnameFloor is the least u an exact family name gets from term frequencies, so a
	// surname seen once in the EMPI does not outweigh everything else.
	SurnameFloor float64 `json:"surname_floor"`
}

// DefaultModel returns the model chartscan starts with, before EstimateU and EstimateM
// refine it on a facility's own EMPI and reviews.
//
// u comes from the combinatorics of an EMPI of about a million patients born over some
// 80 years: an MRN agrees by chance with probability 1/10^6 and one OCR variant away
// with about 20/10^6 (an 8–9 digit MRN has some 20 single-confusion or transposition
// neighbours; a tenth of them pass a Luhn check); a birth date exactly 1/(365×80), a day
// apart 2/(365×80), one digit apart roughly 40/(365×80), the same year 1/80; a family
// name 1/500 (the US census sum of squared surname shares; term frequencies replace it
// per name), a given name 1/100; sex 1/2; street 1/10^4, city 1/20, postcode 1/100, a
// phone number 1/10^4 (households share phones, so not 1/10^6).
//
// m comes from OCR and registration error rates: a printed MRN is read exactly about
// 95% of the time, with most misreads one confusion away; names about 90%, with typos
// and OCR slips in the Jaro–Winkler bands; birth dates about 93%, the rest mostly one
// digit or a day/month swap; sex 98%. Addresses and phones change, so their m is lower.
func DefaultModel() Model {
	const empi = 1e6
	const days = 365 * 80.0
	m := Model{
		Fields: map[string]map[string]Probs{
			FieldMRN: {
				LevelExact:              {0.95, 1 / empi},
				LevelCheckDigitRepaired: {0.015, 2 / empi},
				LevelOCRConfusable:      {0.015, 20 / empi},
			},
			FieldFamily: {
				LevelExact:    {0.90, 1.0 / 500},
				LevelSwapped:  {0.005, 1e-4},
				LevelJW92:     {0.04, 0.002},
				LevelJW85:     {0.02, 0.01},
				LevelPhonetic: {0.01, 0.004},
				LevelInitial:  {0.001, 0.01},
			},
			FieldGiven: {
				LevelExact:    {0.88, 0.01},
				LevelSwapped:  {0.005, 1e-4},
				LevelJW92:     {0.04, 0.005},
				LevelJW85:     {0.02, 0.02},
				LevelPhonetic: {0.01, 0.008},
				LevelInitial:  {0.03, 0.06},
			},
			FieldDOB: {
				LevelExact:           {0.93, 1 / days},
				LevelDayMonthSwapped: {0.01, 1 / days},
				LevelOneDay:          {0.01, 2 / days},
				LevelOneDigit:        {0.03, 40 / days},
				LevelYearOnly:        {0.005, 1.0 / 80},
			},
			FieldSex:      {LevelExact: {0.98, 0.5}},
			FieldStreet:   {LevelExact: {0.6, 1e-4}, LevelJW92: {0.1, 5e-4}},
			FieldCity:     {LevelExact: {0.75, 0.05}},
			FieldPostcode: {LevelExact: {0.75, 0.01}},
			FieldPhone:    {LevelExact: {0.6, 1e-4}},
		},
		// 21 bits: MRN with a birth date (≈34), with both names (≈30) or with the family name
		// (≈25–27) files; name and birth date read with middling confidence (≈21–25) file
		// when nothing else comes near — the margin and the twin rule guard that case, and
		// the exact-DOB block brings every namesake born that day into the comparison. An
		// MRN alone (≈20, ≈21 with the sex) never files, whatever the threshold: Decide
		// wants two identifiers. Tuned on make bench-match's tuning seeds (101–1010, 2,596
		// in-EMPI pages against an EMPI padded with 100,000 namesakes): no page was filed
		// to a wrong patient at any threshold from the review weight (10 bits) up; 21 keeps
		// 11 bits above that. The README's figures come from seeds the tuning never saw.
		AutoWeight:        21,
		Margin:            10,
		ReviewWeight:      10,
		MRNConflictWeight: 64,
		CheckDigit:        "luhn",
		SurnameFloor:      1e-5,
	}
	for f, levels := range fieldLevels {
		m.Fields[f][LevelDisagree] = remainder(m.Fields[f], levels)
	}
	return m
}

// remainder is the disagreement level's m and u: what the agreement levels leave of 1.
func remainder(probs map[string]Probs, levels []string) Probs {
	d := Probs{M: 1, U: 1}
	for _, l := range levels {
		if l != LevelDisagree {
			d.M -= probs[l].M
			d.U -= probs[l].U
		}
	}
	return d
}

// clone returns a deep copy, so the Estimate methods never change the model they start from.
func (m Model) clone() Model {
	c := m
	c.Fields = make(map[string]map[string]Probs, len(m.Fields))
	for f, levels := range m.Fields {
		c.Fields[f] = maps.Clone(levels)
	}
	return c
}

// Weight returns the weight in bits of a field's agreement level read with confidence c
// in [0,1]; u overrides the level's u when positive (the term-frequency adjustment).
//
// Confidence interpolates m toward what a misread shows: a reading that is right with
// probability c shows the level as a match would with probability c·m; a misread shows
// it as chance would (u), or — for a near-agreement level of a field whose misreads have
// a shape (misreadLevels: a birth date read one digit off) — as often as misreads land
// there, whichever is more. So m' = c·m + (1−c)·max(u, q) and the weight is
// log2(m'/u). At c = 1 this is the plain weight; at c = 0 it is 0 (no evidence) except
// for those near levels, where an unsure date one digit off the record's is what a
// misread of the record's date looks like (capped at what an exact agreement read as
// surely weighs). It shrinks disagreements as well as
// agreements: a blurred MRN that disagrees says little. Because u is tiny for MRNs and
// dates, an exact agreement keeps most of its weight at moderate confidence, which is
// right: a misread that happens to equal the record is itself improbable.
func (m Model) Weight(field, level string, c, u float64) float64 {
	if level == LevelMissing {
		return 0
	}
	p, ok := m.Fields[field][level]
	if !ok {
		return 0
	}
	if u > 0 {
		p.U = u
	}
	c = clamp01(c)
	const tiny = 1e-12
	q, near := misreadLevels[field][level]
	mm := c*p.M + (1-c)*max(p.U, q)
	w := math.Log2(math.Max(mm, tiny) / math.Max(p.U, tiny))
	if near {
		// A near agreement never outweighs an exact one read as surely.
		w = math.Min(w, m.Weight(field, LevelExact, c, 0))
	}
	return math.Round(w*100) / 100
}

// misreadLevels is, for the fields whose misreads have a known shape, how often a
// reading that is wrong still lands on each near-agreement level with the true value.
// OCR misreads a birth date one glyph at a time (3/8, 1/7, 0/6, 5/6): a misread date is
// most often one digit off the true one, sometimes a day off or with day and month
// read the other way round, and almost never the true date itself.
var misreadLevels = map[string]map[string]float64{
	FieldDOB: {LevelOneDigit: 0.5, LevelOneDay: 0.05, LevelDayMonthSwapped: 0.02, LevelYearOnly: 0.03},
}

// ErrModel is returned by Validate for a model that cannot be used to file pages.
var ErrModel = errors.New("invalid matching model")

// Validate reports whether m can decide: a model without field probabilities scores every
// candidate 0, and a threshold of 0 or less would then auto-file anything.
func (m Model) Validate() error {
	for _, f := range []string{FieldMRN, FieldFamily, FieldGiven, FieldDOB} {
		if len(m.Fields[f]) == 0 {
			return fmt.Errorf("%w: no probabilities for field %s", ErrModel, f)
		}
	}
	if m.AutoWeight <= 0 || m.Margin <= 0 {
		return fmt.Errorf("%w: the auto-filing threshold and margin must be above 0", ErrModel)
	}
	if m.ReviewWeight >= m.AutoWeight {
		return fmt.Errorf("%w: the review weight must be below the auto-filing threshold", ErrModel)
	}
	if m.CheckDigit != "luhn" && m.CheckDigit != "none" {
		return fmt.Errorf("%w: unknown check-digit scheme", ErrModel)
	}
	return nil
}
