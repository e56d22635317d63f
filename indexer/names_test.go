package indexer

import "testing"

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Doe", "doe"},
		{"  DOE ", "doe"},
		{"O'Brien", "obrien"},
		{"Smith-Jones", "smithjones"},
		{"De La Cruz", "delacruz"},
		{"Núñez", "nunez"},
		{"JOSÉ", "jose"},
		{"Øster", "oster"},
		{"Strauß", "strauss"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormalizeName(tt.in); got != tt.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeMRN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"00123456", "00123456"},
		{"ab-12.34 5", "AB12345"},
		{" 12 345 ", "12345"},
	}
	for _, tt := range tests {
		if got := NormalizeMRN(tt.in); got != tt.want {
			t.Errorf("NormalizeMRN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeSex(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"M", "male", true}, {"Male", "male", true}, {"f", "female", true}, {"FEMALE", "female", true},
		{"other", "other", true}, {"U", "unknown", true}, {"unknown", "unknown", true}, {"?", "", false},
	}
	for _, tt := range tests {
		got, ok := NormalizeSex(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeSex(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseDate(t *testing.T) {
	fixNow(t)
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"03/14/1962", "1962-03-14", true},
		{"3/4/1962", "1962-03-04", true},
		{"03-14-1962", "1962-03-14", true},
		{"1962-03-14", "1962-03-14", true},
		{"1962/3/14", "1962-03-14", true},
		{"14.03.1962", "1962-03-14", true},
		{"04.03.1962", "1962-03-04", true}, // dots: day first
		{"14/03/1962", "1962-03-14", true}, // only day-first is a date
		{"14-Mar-1962", "1962-03-14", true},
		{"14 Mar 1962", "1962-03-14", true},
		{"14 MAR 62", "1962-03-14", true},
		{"March 14, 1962", "1962-03-14", true},
		{"Mar 14 1962", "1962-03-14", true},
		{"Mar. 14th, 1962", "1962-03-14", true},
		{"Sept 1, 2001", "2001-09-01", true},
		{"03/14/62", "1962-03-14", true},
		{"01/15/26", "2026-01-15", true}, // this year is not the future
		{"01/15/27", "1927-01-15", true}, // next year would be
		{"03/14/ 1962", "1962-03-14", true},
		{"(03/14/1962)", "1962-03-14", true},
		{"02/29/2000", "2000-02-29", true},
		{"02/29/1900", "", false},
		{"02/30/1962", "", false},
		{"13/13/1962", "", false},
		{"00/10/1962", "", false},
		{"03/14/196", "", false},
		{"03/14-1962", "", false},
		{"1962-03", "", false},
		{"14 Foo 1962", "", false},
		{"", "", false},
		{"10:30", "", false},
		// A monospace printout's slashed zero, misread (repairDate).
		{"9@7-AUG-2013", "2013-08-07", true},
		{"Q@6-JUN-1999.", "1999-06-06", true},
		{"94-AUG~2013", "2013-08-04", true},
		{"26-NOV~2006.", "2006-11-26", true},
		{"Q4—-Apr-2015", "2015-04-04", true},
		{"1983-11--06", "1983-11-06", true},
		{"1994-99-02", "1994-09-02", true},
		{"95/11/2001", "2001-05-11", true},
		{"81/09/2016", "2016-01-09", true},
		{"1990-67-12", "1990-07-12", true},
		{"65/16/1991", "1991-05-16", true},
		{"89/88/2016", "", false},  // two repairs would be needed
		{"99/99/1962", "", false},  // no one repair makes a date
		{"12/34/1962", "", false},  // nothing to repair
		{"03/14/962", "", false},   // never the year
		{"991/14/1962", "", false}, // two repairs would be needed
	}
	for _, tt := range tests {
		got, ok := ParseDate(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseDate(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// The fast paths of scoring give what the plain definitions give: the ASCII key against
// keyOf, and the three-row optimal string alignment distance against the whole table.
func TestScoringFastPathsAgree(t *testing.T) {
	osaTable := func(a, b []rune) int {
		d := make([][]int, len(a)+1)
		for i := range d {
			d[i] = make([]int, len(b)+1)
			d[i][0] = i
		}
		for j := range d[0] {
			d[0][j] = j
		}
		for i := 1; i <= len(a); i++ {
			for j := 1; j <= len(b); j++ {
				cost := 1
				if a[i-1] == b[j-1] {
					cost = 0
				}
				d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
				if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
					d[i][j] = min(d[i][j], d[i-2][j-2]+1)
				}
			}
		}
		return d[len(a)][len(b)]
	}
	words := []string{"", "a", "ab", "ba", "olivia", "ilivoa", "taylor", "atlylor", "amber", "amrbr", "omar", "mora",
		"O'Brien-Nunez", "MACINTOSH", "x9 y", "abcdefghij", "jihgfedcba", "aab", "abb", "ca", "abc"}
	for _, a := range words {
		if got, want := keyOfASCII(a), keyOf(a); got != want {
			t.Errorf("keyOfASCII(%q) = %q, keyOf %q", a, got, want)
		}
		for _, b := range words {
			if got, want := osaDistance([]rune(a), []rune(b)), osaTable([]rune(a), []rune(b)); got != want {
				t.Errorf("osaDistance(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}
