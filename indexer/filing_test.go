package indexer

import (
	"github.com/chartscan/chartscan"
)

// ids builds a page's identifiers; empty values are left out. nameValue is "FAMILY, Given".
func ids(mrnValue, nameValue, dobValue string) []chartscan.Identifier {
	var out []chartscan.Identifier
	for _, id := range []chartscan.Identifier{
		{Kind: chartscan.KindMRN, Value: mrnValue, Confidence: 0.9},
		{Kind: chartscan.KindName, Value: nameValue, Confidence: 0.9},
		{Kind: chartscan.KindDOB, Value: dobValue, Confidence: 0.9},
	} {
		if id.Value != "" {
			out = append(out, id)
		}
	}
	return out
}

// docTypeOnly is a page with identifiers that filing does not match on.
var docTypeOnly = []chartscan.Identifier{{Kind: chartscan.KindDocType, Value: chartscan.DocTypeProgressNote, Confidence: 0.9}}

var (
	pJane  = chartscan.Patient{MRN: "00123456", Family: "Doe", Given: "Jane Marie", BirthDate: "1962-03-14", Sex: "female"}
	pJose  = chartscan.Patient{MRN: "555", Family: "Núñez", Given: "José", BirthDate: "1970-01-01", Sex: "male"}
	pOther = chartscan.Patient{MRN: "777", Family: "Doe", Given: "Jane", BirthDate: "1962-03-14", Sex: "female"}
)

// brief is the part of a Filing most rules are about.
type brief struct {
	Status chartscan.PageStatus
	MRN    string
	Reason string
}

func briefs(fs []chartscan.Filing) []brief {
	out := make([]brief, 0, len(fs))
	for _, f := range fs {
		out = append(out, brief{f.Status, f.MRN, f.Reason})
	}
	return out
}
