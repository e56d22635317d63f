package indexer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// foldLetters spells letters that do not decompose into a base letter and a mark, so
// "Øster" and "Oster" compare equal the way "Müller" and "Muller" do.
var foldLetters = strings.NewReplacer("ß", "ss", "æ", "ae", "Æ", "ae", "ø", "o", "Ø", "o",
	"ł", "l", "Ł", "l", "đ", "d", "Đ", "d", "œ", "oe", "Œ", "oe", "ı", "i")

// NormalizeName returns s reduced to what name comparisons look at: lower case letters
// and digits, diacritics, punctuation and spaces removed ("O'Brien-Núñez" → "obriennunez").
func NormalizeName(s string) string {
	if isASCII(s) {
		// Most names are: skip the Unicode transform, whose buffers cost 30 µs a call —
		// most of scoring a candidate. foldLetters changes no ASCII letter.
		return keyOfASCII(s)
	}
	// A transform.Chain holds state, so each call builds its own.
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	folded, _, err := transform.String(t, foldLetters.Replace(s))
	if err != nil {
		folded = s
	}
	return keyOf(folded)
}

var honorifics = map[string]bool{"mr": true, "mrs": true, "ms": true, "miss": true, "mx": true, "dr": true}

var suffixes = map[string]bool{"jr": true, "sr": true, "ii": true, "iii": true, "iv": true}

// particles join the surname that follows them in "Given Surname" order.
var particles = map[string]bool{
	"van": true, "von": true, "de": true, "der": true, "den": true, "del": true, "della": true,
	"da": true, "di": true, "du": true, "la": true, "le": true, "st": true, "ten": true,
	"ter": true, "bin": true, "al": true, "el": true, "dos": true, "das": true,
}

// namePart is one word of a name with the token it came from.
type namePart struct {
	text  string
	tok   int
	comma bool // a comma follows it
}

// parseName reads "SURNAME, Given [Middle]" or "Given [Middle] Surname" from the start of
// a name field's value. strict asks every word to be capitalized, for weak labels where
// the "value" may just be the rest of a sentence. It returns the "FAMILY, Given" value,
// the number of tokens used and how sure the reading is.
func parseName(toks []token, strict bool) (string, int, float64, bool) {
	var parts []namePart
	commas := 0
scan:
	for i, t := range toks {
		pieces := strings.Split(t.text, ",")
		for j, p := range pieces {
			p = strings.Trim(p, ";:")
			if p == "" {
				if j > 0 && len(parts) > 0 && !parts[len(parts)-1].comma {
					parts[len(parts)-1].comma = true
					commas++
				}
				continue
			}
			if !nameShaped(p) || (strict && !firstRuneUpper(p)) || commas > 1 {
				break scan
			}
			if j > 0 && len(parts) > 0 && !parts[len(parts)-1].comma {
				parts[len(parts)-1].comma = true
				commas++
			}
			if commas > 1 {
				break scan
			}
			parts = append(parts, namePart{text: p, tok: i})
		}
	}
	for len(parts) > 0 && honorifics[keyOf(parts[0].text)] {
		parts = parts[1:]
	}
	comma := -1
	for i, p := range parts {
		if p.comma {
			comma = i
			break
		}
	}
	var family, given []namePart
	var middle []namePart
	q := 1.0
	if comma >= 0 {
		family = dropSuffixes(parts[:comma+1])
		rest := parts[comma+1:]
		if len(rest) == 0 || len(family) == 0 || len(family) > 3 {
			return "", 0, 0, false
		}
		given = rest[:1]
		if len(rest) > 1 && !suffixes[keyOf(rest[1].text)] {
			middle = rest[1:2]
		}
	} else {
		parts = dropSuffixes(parts)
		if len(parts) < 2 {
			return "", 0, 0, false
		}
		start := len(parts) - 1
		for start > 1 && particles[keyOf(parts[start-1].text)] {
			start--
		}
		if start > 2 {
			// More words than Given Middle Surname: cannot tell where the name ends.
			return "", 0, 0, false
		}
		given, middle, family = parts[:1], parts[1:start], parts[start:]
		q = 0.9
	}
	famText := make([]string, 0, len(family))
	for _, p := range family {
		famText = append(famText, strings.TrimSuffix(p.text, "."))
	}
	fam := strings.ToUpper(strings.Join(famText, " "))
	giv := titleCase(strings.TrimSuffix(given[0].text, "."))
	if letters(fam) < 2 || letters(giv) < 1 || honorifics[keyOf(giv)] {
		return "", 0, 0, false
	}
	used := given[0].tok
	for _, p := range append(family, middle...) {
		used = max(used, p.tok)
	}
	return fam + ", " + giv, used + 1, q, true
}

func dropSuffixes(ps []namePart) []namePart {
	for len(ps) > 1 && suffixes[keyOf(ps[len(ps)-1].text)] {
		ps = ps[:len(ps)-1]
	}
	return ps
}

// nameShaped reports whether s can be a word of a name: letters with inner hyphens or
// apostrophes, or an initial or abbreviation ending in a dot.
func nameShaped(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return false
	}
	prevLetter := false
	for i, r := range s {
		switch {
		case unicode.IsLetter(r):
			prevLetter = true
		case (r == '-' || r == '\'' || r == '’') && i > 0 && prevLetter:
			prevLetter = false
		default:
			return false
		}
	}
	return prevLetter
}

func letters(s string) int {
	n := 0
	for _, r := range s {
		if unicode.IsLetter(r) {
			n++
		}
	}
	return n
}

// titleCase capitalizes each part of a given name: "mary-ann" → "Mary-Ann", "O'NEIL" →
// "O'Neil".
func titleCase(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if up {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
		up = r == '-' || r == '\'' || r == '’' || r == ' '
	}
	return b.String()
}

// splitNameValue splits a KindName value, normally "FAMILY, Given", into the family name
// and the first given name. A value without a comma is read as "Given … Family".
func splitNameValue(v string) (family, given string) {
	if f, g, ok := strings.Cut(v, ","); ok {
		return strings.TrimSpace(f), firstWord(g)
	}
	w := strings.Fields(v)
	if len(w) < 2 {
		return "", ""
	}
	return w[len(w)-1], w[0]
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// isInitial reports whether a normalized given name is a single letter.
func isInitial(s string) bool { return utf8.RuneCountInString(s) == 1 }

// keyOfASCII is keyOf for an ASCII string; a string that is a key already (as a
// normalized name is when scoring compares it again) is returned without a copy.
func keyOfASCII(s string) string {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= '0' && s[i] <= '9') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := make([]byte, i, len(s))
	copy(b, s[:i])
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		}
	}
	return string(b)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
