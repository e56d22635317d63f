package ocr

import (
	"strings"
	"unicode/utf8"
)

// cer is the character error rate of got against the ground truth want: the edit
// distance between the two, whitespace-normalized, over the length of want.
func cer(got, want string) float64 {
	g, w := []rune(normSpace(got)), []rune(normSpace(want))
	if len(w) == 0 {
		if len(g) == 0 {
			return 0
		}
		return 1
	}
	return float64(levenshtein(g, w)) / float64(len(w))
}

func normSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

func levenshtein(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var _ = utf8.RuneLen
