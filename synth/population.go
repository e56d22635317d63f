package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chartscan/chartscan"
)

// commonSurnames are the clean surnames of fake_1000, most common first, without the
// first names it also carries as surnames.
var commonSurnames = strings.Fields(`Jones Davies Taylor Campbell Hall Morgan Smith King
	Russell Dixon Wright Edwards Fox Kaur Lee May Williams Atkinson Brown Hughes James Mason
	Payne Armstrong Bennett Davidson Marshall Owen Roberts Turner Adams Bradley Cole Holmes
	Riley Robertson Rogers Watson Andrews Clarke Curtis Davis Day Evans Fletcher Harper
	Lloyd Logan Miller Morris Rhodes Robinson Scott Shaw Thomas West Banks Barker Bird
	Brooks Byrne Carter Clark Cross Dean Elliott Ellis Green Griffiths Hunter Jackson Moore
	Norman Oliver Page Pearson Porter Rice Shah Sutherland Wells White Wilkinson Young`)

// Syllables of the rare surnames: an onset, sometimes a middle or a second onset, and
// an ending, each drawn with a skew so that rare surnames are rare to different degrees.
var (
	surnameOnsets = strings.Fields(`Ash Bar Bel Brad Cal Dal Dun Fen Gar Hal Hart Kel Lang
		Mar Mor Nor Pen Ram Ros Sel Stan Thorn Wal Wes Whit Win Yar Brom Carn Ded Elm Farn
		Gil Hol Kin Lox Mel Ock Pem Quen Rad Sut Tam Ul Ven Wick`)
	surnameMiddles = strings.Fields(`er in ing ow en at ble le et ar`)
	surnameEndings = strings.Fields(`ford ley ton well wood by ham field more stead worth
		croft den shaw brook wick mere ridge combe hurst son ing lock thwaite`)
	streetNames = strings.Fields(`Church Station Victoria Green Manor Park Queen Mill King
		Chapel Elm Oak Beech Willow Alexandra Albert York Grange Highfield Kingsway Windsor
		Meadow Orchard Springfield Cedar Holly Mount Castle School North`)
	streetTypes = strings.Fields(`Road Street Lane Avenue Close Drive Way Crescent Gardens`)
)

// city is one town of the population with what its addresses and phones look like.
type city struct {
	name, nation string
	areas        []string // postcode areas
	phone        string   // landline prefix in Ofcom's drama range, to which 3 digits are added
}

// cities are fake_1000's towns, most common first. Phone numbers come only from the
// ranges Ofcom keeps for drama, so none rings a real line.
var cities = []city{
	{"London", "England", []string{"E", "N", "NW", "SE", "SW", "W"}, "020 7946 0"},
	{"Birmingham", "England", []string{"B"}, "0121 496 0"},
	{"Liverpool", "England", []string{"L"}, "0151 496 0"},
	{"Coventry", "England", []string{"CV"}, "01632 960"},
	{"Newcastle-upon-Tyne", "England", []string{"NE"}, "0191 498 0"},
	{"Leeds", "England", []string{"LS"}, "0113 496 0"},
	{"Manchester", "England", []string{"M"}, "0161 496 0"},
	{"Bristol", "England", []string{"BS"}, "0117 496 0"},
	{"Aberdeen", "Scotland", []string{"AB"}, "01632 960"},
	{"Southend-on-Sea", "England", []string{"SS"}, "01632 960"},
	{"Salford", "England", []string{"M"}, "0161 496 0"},
	{"Portsmouth", "England", []string{"PO"}, "01632 960"},
	{"Swansea", "Wales", []string{"SA"}, "01632 960"},
	{"Kingston-upon-Hull", "England", []string{"HU"}, "01632 960"},
	{"Reading", "England", []string{"RG"}, "0118 496 0"},
	{"Plymouth", "England", []string{"PL"}, "01632 960"},
	{"Cardiff", "Wales", []string{"CF"}, "029 2018 0"},
	{"Swindon", "England", []string{"SN"}, "01632 960"},
	{"Huddersfield", "England", []string{"HD"}, "01632 960"},
	{"Bradford", "England", []string{"BD"}, "01632 960"},
	{"Belfast", "Northern Ireland", []string{"BT"}, "028 9649 6"},
	{"Peterborough", "England", []string{"PE"}, "01632 960"},
	{"Mansfield", "England", []string{"NG"}, "01632 960"},
	{"York", "England", []string{"YO"}, "01632 960"},
	{"Southampton", "England", []string{"SO"}, "01632 960"},
	{"Sheffield", "England", []string{"S"}, "0114 496 0"},
	{"Leicester", "England", []string{"LE"}, "0116 496 0"},
	{"Glasgow", "Scotland", []string{"G"}, "0141 496 0"},
	{"Edinburgh", "Scotland", []string{"EH"}, "0131 496 0"},
	{"Stoke-on-Trent", "England", []string{"ST"}, "01632 960"},
	{"Dudley", "England", []string{"DY"}, "01632 960"},
	{"Nottingham", "England", []string{"NG"}, "0115 496 0"},
	{"Ipswich", "England", []string{"IP"}, "01632 960"},
	{"Bolton", "England", []string{"BL"}, "01632 960"},
	{"Northampton", "England", []string{"NN"}, "01632 960"},
}

// mobilePrefix is Ofcom's drama range for mobiles.
const mobilePrefix = "07700 900"

// postcodeLetters are the letters UK inward codes use.
const postcodeLetters = "ABDEFGHJLNPQRSTUWXYZ"

// commonSurnameShare is the share of patients with a surname from commonSurnames, which
// puts the commonest near 2% of the population, as Smith is in Britain; the rest get a
// rare built one.
const commonSurnameShare = 0.45

// zipf draws ranks 0..n-1 with weights 1/(v+rank)^s.
type zipf []float64 // cumulative weights

func newZipf(n int, s, v float64) zipf {
	z := make(zipf, n)
	sum := 0.0
	for i := range z {
		sum += math.Pow(v+float64(i), -s)
		z[i] = sum
	}
	return z
}

func (z zipf) draw(rng *rand.Rand) int {
	return min(sort.SearchFloat64s(z, rng.Float64()*z[len(z)-1]), len(z)-1)
}

// popTables are Population's samplers, built once.
var popTables = sync.OnceValue(func() struct {
	female, male, surname, onset, middle, ending, city zipf
} {
	return struct {
		female, male, surname, onset, middle, ending, city zipf
	}{
		female:  newZipf(len(femaleGiven), 1.05, 8),
		male:    newZipf(len(maleGiven), 1.05, 8),
		surname: newZipf(len(commonSurnames), 1.1, 10),
		onset:   newZipf(len(surnameOnsets), 1.0, 2),
		middle:  newZipf(len(surnameMiddles), 1.0, 2),
		ending:  newZipf(len(surnameEndings), 1.0, 2),
		city:    newZipf(len(cities), 1.0, 1.5),
	}
})

// Birth dates of the population: 1920-01-01 to 2024-12-31, as days since 1970-01-01.
var (
	firstBirth = time.Date(1920, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 86400
	lastBirth  = time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC).Unix() / 86400
)

// maxPopulation is how many distinct 9-digit MRNs without a leading zero there are.
const maxPopulation = 90_000_000

// Population calls fn with n synthetic patients for a big EMPI, stopping at and
// returning the first error fn returns. Patients have unique valid MRNs (8 digits without
// a leading zero and a Luhn check digit), fake_1000 first names drawn by sex with a Zipf
// skew, surnames from fake_1000 with a Zipf skew or built from syllables (so a term's
// frequency ranges from about 2% to once), birth dates spread evenly over 1920–2024, and
// a street, British town, postcode, nation (in State) and a phone number from Ofcom's
// drama ranges. Two patients may share a name and birth date, as in real EMPIs, but not
// an MRN. The same n and seed give the same patients in the same order; a prefix of a
// bigger population is the smaller one.
func Population(n int, seed int64, fn func(chartscan.Patient) error) error {
	if n < 0 || n > maxPopulation {
		return fmt.Errorf("%w: population %d not in [0,%d]", ErrOptions, n, maxPopulation)
	}
	tb := popTables()
	rng := rand.New(rand.NewPCG(uint64(seed), 0x706f70)) // "pop"
	perm := newMRNPerm(rng)
	var buf []byte
	for i := range n {
		var p chartscan.Patient
		p.MRN = perm.mrn(uint32(i))

		switch u := rng.IntN(1000); {
		case u < 495:
			p.Sex = "female"
		case u < 990:
			p.Sex = "male"
		case u < 997:
			p.Sex = "unknown"
		default:
			p.Sex = "other"
		}
		female := p.Sex == "female" || p.Sex != "male" && rng.IntN(2) == 0
		if female {
			p.Given = femaleGiven[tb.female.draw(rng)]
		} else {
			p.Given = maleGiven[tb.male.draw(rng)]
		}

		if rng.Float64() < commonSurnameShare {
			p.Family = commonSurnames[tb.surname.draw(rng)]
		} else {
			buf = append(buf[:0], surnameOnsets[tb.onset.draw(rng)]...)
			switch rng.IntN(20) {
			case 0, 1, 2, 3, 4, 5, 6:
				buf = append(buf, surnameMiddles[tb.middle.draw(rng)]...)
			case 7, 8, 9, 10, 11:
				buf = append(buf, strings.ToLower(surnameOnsets[rng.IntN(len(surnameOnsets))])...)
			}
			buf = append(buf, surnameEndings[tb.ending.draw(rng)]...)
			p.Family = string(buf)
		}

		buf = appendDate(buf[:0], firstBirth+rng.Int64N(lastBirth-firstBirth+1))
		p.BirthDate = string(buf)

		c := &cities[tb.city.draw(rng)]
		buf = strconv.AppendInt(buf[:0], 1+rng.Int64N(240), 10)
		buf = append(buf, ' ')
		buf = append(buf, streetNames[rng.IntN(len(streetNames))]...)
		buf = append(buf, ' ')
		buf = append(buf, streetTypes[rng.IntN(len(streetTypes))]...)
		p.Street = string(buf)
		p.City, p.State = c.name, c.nation

		buf = append(buf[:0], c.areas[rng.IntN(len(c.areas))]...)
		buf = strconv.AppendInt(buf, 1+rng.Int64N(20), 10)
		buf = append(buf, ' ', byte('1'+rng.IntN(9)),
			postcodeLetters[rng.IntN(len(postcodeLetters))], postcodeLetters[rng.IntN(len(postcodeLetters))])
		p.Postcode = string(buf)

		prefix := c.phone
		if rng.IntN(5) < 3 {
			prefix = mobilePrefix
		}
		buf = append(buf[:0], prefix...)
		d := rng.IntN(1000)
		buf = append(buf, byte('0'+d/100), byte('0'+d/10%10), byte('0'+d%10))
		p.Phone = string(buf)

		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// appendDate appends the day days after 1970-01-01 as YYYY-MM-DD (years 1000–9999),
// without time.Time, which costs more than the rest of a patient.
func appendDate(b []byte, days int64) []byte {
	// Howard Hinnant's civil_from_days.
	z := days + 719468
	era := z / 146097
	if z < 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

// mrnPerm maps 0, 1, 2, … to distinct MRN bodies in a scattered order: a 4-round Feistel
// permutation of 28-bit numbers, walked until it lands below maxPopulation, is a
// permutation of [0, maxPopulation).
type mrnPerm [4]uint32

func newMRNPerm(rng *rand.Rand) mrnPerm {
	var k mrnPerm
	for i := range k {
		k[i] = rng.Uint32()
	}
	return k
}

func (k mrnPerm) mrn(i uint32) string {
	x := i
	for {
		l, r := x>>14, x&0x3fff
		for _, key := range k {
			h := (r ^ key) * 0x9e3779b1
			h ^= h >> 15
			h *= 0x85ebca6b
			h ^= h >> 13
			l, r = r, l^(h&0x3fff)
		}
		x = l<<14 | r
		if x < maxPopulation {
			break
		}
	}
	var b [9]byte
	v := 10_000_000 + x
	for j := 7; j >= 0; j-- {
		b[j] = byte('0' + v%10)
		v /= 10
	}
	b[8] = byte('0' + luhnDigit(string(b[:8])))
	return string(b[:])
}

// Chances of each slip Perturb makes, chosen so that most queries carry at least one
// disagreement, as OCR of real labels does.
const (
	perturbFamily = 0.3
	perturbGiven  = 0.2
	perturbDOB    = 0.1
	perturbMRN    = 0.05
)

// Perturb returns what OCR of a chart printed for p might yield, for latency and
// accuracy queries: only what a chart label carries (MRN, names, birth date, sex), with a
// typo in the surname 30% of the time and in the first name 20% (an OCR-confusable
// letter, a dropped, doubled or transposed one), a digit slip or day/month swap in the
// birth date 10% (the result is still a date) and two adjacent MRN digits transposed 5%.
func Perturb(p chartscan.Patient, rng *rand.Rand) chartscan.Patient {
	q := chartscan.Patient{MRN: p.MRN, Family: p.Family, Given: p.Given, BirthDate: p.BirthDate, Sex: p.Sex}
	if rng.Float64() < perturbFamily {
		q.Family = typo(q.Family, rng)
	}
	if rng.Float64() < perturbGiven {
		q.Given = typo(q.Given, rng)
	}
	if rng.Float64() < perturbDOB {
		q.BirthDate = slipDate(q.BirthDate, rng)
	}
	if rng.Float64() < perturbMRN {
		if s := digitSlips(q.MRN, false); len(s) > 0 {
			q.MRN = s[rng.IntN(len(s))]
		}
	}
	return q
}

// ocrLetters maps a lower-case letter to what OCR reads it as.
var ocrLetters = map[byte]string{
	'a': "o", 'b': "h", 'c': "e", 'e': "c", 'g': "q", 'h': "b", 'i': "l", 'l': "i",
	'm': "rn", 'n': "m", 'o': "a", 'r': "n", 't': "f", 'u': "v", 'v': "u", 'y': "v",
}

// typo returns name with one slip after its first letter: an OCR-confusable letter, a
// dropped letter (names of four or more), a doubled one, or two neighbours swapped. Names
// shorter than two letters come back unchanged.
func typo(name string, rng *rand.Rand) string {
	if len(name) < 2 {
		return name
	}
	i := 1 + rng.IntN(len(name)-1)
	switch rng.IntN(4) {
	case 0:
		if r, ok := ocrLetters[name[i]]; ok {
			return name[:i] + r + name[i+1:]
		}
		fallthrough
	case 1:
		if len(name) >= 4 {
			return name[:i] + name[i+1:]
		}
		fallthrough
	case 2:
		return name[:i] + name[i:i+1] + name[i:]
	}
	if i+1 < len(name) && name[i] != name[i+1] {
		return name[:i] + name[i+1:i+2] + name[i:i+1] + name[i+2:]
	}
	return name[:i] + name[i:i+1] + name[i:]
}

// slipDate returns the YYYY-MM-DD date iso with day and month swapped or one digit slip,
// chosen among the results that are still dates; iso itself if there is none.
func slipDate(iso string, rng *rand.Rand) string {
	t, err := time.Parse(time.DateOnly, iso)
	if err != nil {
		return iso
	}
	var out []string
	if d, m := t.Day(), int(t.Month()); d <= 12 && d != m {
		out = append(out, fmt.Sprintf("%04d-%02d-%02d", t.Year(), d, m))
	}
	for _, s := range digitSlips(iso, true) {
		if _, err := time.Parse(time.DateOnly, s); err == nil {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return iso
	}
	return out[rng.IntN(len(out))]
}
