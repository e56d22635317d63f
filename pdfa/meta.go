package pdfa

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
)

// Namespace of chartscan's own XMP properties. PDF/A accepts properties outside the
// schemas it predefines only when the file describes them in a PDF/A extension schema,
// which xmpPacket writes.
const (
	nsChartscan     = "https://github.com/chartscan/chartscan/ns/document/1.0/"
	prefixChartscan = "chartscan"
)

// maxMetaRunes bounds a metadata value: PDF strings may not pass 32,767 bytes, and no
// title needs a thousand characters.
const maxMetaRunes = 1000

// clean makes a metadata value safe for both the Info dictionary and XMP: valid UTF-8,
// no control characters (XML 1.0 forbids most of them; a NUL would end a C reader's
// string), no surrounding space, at most maxMetaRunes characters. The same cleaned value
// goes to both places, which PDF/A requires to agree.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if r := []rune(s); len(r) > maxMetaRunes {
		s = string(r[:maxMetaRunes])
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\uFFFE' || r == '\uFFFF' {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// docMeta is Meta after cleaning, with the derived Subject and Keywords.
type docMeta struct {
	Title, DocumentType, DateOfService, Producer, ID string
	Subject, Keywords                                string
	Created                                          time.Time
}

func newDocMeta(m Meta) docMeta {
	d := docMeta{
		Title:         clean(m.Title),
		DocumentType:  clean(m.DocumentType),
		DateOfService: clean(m.DateOfService),
		Producer:      clean(m.Producer),
		ID:            clean(m.ID),
		Created:       m.Created.UTC().Truncate(time.Second),
	}
	if d.Producer == "" {
		d.Producer = "chartscan"
	}
	var subject, keywords []string
	if d.DocumentType != "" {
		// chartscan's codes (progress_note) read as words in a viewer's document
		// properties; Keywords and the XMP keep the code for software.
		subject = append(subject, strings.ReplaceAll(d.DocumentType, "_", " "))
		keywords = append(keywords, d.DocumentType)
	}
	if d.DateOfService != "" {
		subject = append(subject, "date of service "+d.DateOfService)
		keywords = append(keywords, d.DateOfService)
	}
	d.Subject = strings.Join(subject, ", ")
	d.Keywords = strings.Join(keywords, "; ")
	return d
}

// pdfDate is a date in the Info dictionary's form; xmpDate the same instant in XMP's.
// Both are UTC so that a reader comparing them (as PDF/A validators do) finds them equal;
// the Info form spells out Z00'00', as PDF 1.7 writes it, since a strict reader (pdfcpu)
// refuses a bare Z.
func pdfDate(t time.Time) string { return "D:" + t.UTC().Format("20060102150405") + "Z00'00'" }
func xmpDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// infoDict is the document information dictionary. Every entry that has an XMP
// equivalent (Title/dc:title, Subject/dc:description, Keywords/pdf:Keywords,
// Creator/xmp:CreatorTool, Producer/pdf:Producer, CreationDate/xmp:CreateDate,
// ModDate/xmp:ModifyDate) carries the same value as the packet; DocumentType,
// DateOfService and DocumentID are chartscan's own keys for readers of the Info
// dictionary only.
func infoDict(d docMeta) string {
	var sb strings.Builder
	sb.WriteString("<<")
	put := func(key, value string) {
		if value != "" {
			fmt.Fprintf(&sb, " /%s %s", key, textString(value))
		}
	}
	put("Title", d.Title)
	put("Subject", d.Subject)
	put("Keywords", d.Keywords)
	put("Creator", d.Producer)
	put("Producer", d.Producer)
	put("DocumentType", d.DocumentType)
	put("DateOfService", d.DateOfService)
	put("DocumentID", d.ID)
	fmt.Fprintf(&sb, " /CreationDate (%s) /ModDate (%s) >>", pdfDate(d.Created), pdfDate(d.Created))
	return sb.String()
}

// textString writes a PDF text string: a literal for printable ASCII, else UTF-16BE
// with a byte order mark, in hex.
func textString(s string) string {
	ascii := true
	for _, r := range s {
		if r < 0x20 || r > 0x7E {
			ascii = false
			break
		}
	}
	if ascii {
		r := strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`)
		return "(" + r.Replace(s) + ")"
	}
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2+2*len(u))
	b = append(b, 0xFE, 0xFF)
	for _, c := range u {
		b = append(b, byte(c>>8), byte(c))
	}
	return hexString(b)
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// xmpPacket is the document's XMP metadata: PDF/A-2b identification, the Info
// dictionary's values in their XMP properties, and the document type, date of service
// and document id in chartscan's namespace, described by a PDF/A extension schema.
func xmpPacket(d docMeta) []byte {
	var sb strings.Builder
	sb.WriteString("<?xpacket begin=\"\uFEFF\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n" +
		"<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n" +
		"<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n")

	sb.WriteString(" <rdf:Description rdf:about=\"\" xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\">\n" +
		"  <pdfaid:part>2</pdfaid:part>\n  <pdfaid:conformance>B</pdfaid:conformance>\n </rdf:Description>\n")

	sb.WriteString(" <rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n" +
		"  <dc:format>application/pdf</dc:format>\n")
	if d.Title != "" {
		fmt.Fprintf(&sb, "  <dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">%s</rdf:li></rdf:Alt></dc:title>\n", xmlText(d.Title))
	}
	if d.Subject != "" {
		fmt.Fprintf(&sb, "  <dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">%s</rdf:li></rdf:Alt></dc:description>\n", xmlText(d.Subject))
	}
	if d.ID != "" {
		fmt.Fprintf(&sb, "  <dc:identifier>%s</dc:identifier>\n", xmlText(d.ID))
	}
	sb.WriteString(" </rdf:Description>\n")

	fmt.Fprintf(&sb, " <rdf:Description rdf:about=\"\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\">\n"+
		"  <xmp:CreateDate>%[1]s</xmp:CreateDate>\n  <xmp:ModifyDate>%[1]s</xmp:ModifyDate>\n"+
		"  <xmp:MetadataDate>%[1]s</xmp:MetadataDate>\n  <xmp:CreatorTool>%[2]s</xmp:CreatorTool>\n </rdf:Description>\n",
		xmpDate(d.Created), xmlText(d.Producer))

	fmt.Fprintf(&sb, " <rdf:Description rdf:about=\"\" xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\">\n"+
		"  <pdf:Producer>%s</pdf:Producer>\n", xmlText(d.Producer))
	if d.Keywords != "" {
		fmt.Fprintf(&sb, "  <pdf:Keywords>%s</pdf:Keywords>\n", xmlText(d.Keywords))
	}
	sb.WriteString(" </rdf:Description>\n")

	if d.DocumentType != "" || d.DateOfService != "" || d.ID != "" {
		fmt.Fprintf(&sb, " <rdf:Description rdf:about=\"\" xmlns:%s=\"%s\">\n", prefixChartscan, nsChartscan)
		for _, p := range []struct{ name, value string }{
			{"DocumentType", d.DocumentType}, {"DateOfService", d.DateOfService}, {"DocumentID", d.ID},
		} {
			if p.value != "" {
				fmt.Fprintf(&sb, "  <%[1]s:%[2]s>%[3]s</%[1]s:%[2]s>\n", prefixChartscan, p.name, xmlText(p.value))
			}
		}
		sb.WriteString(" </rdf:Description>\n")
		sb.WriteString(extensionSchema)
	}

	sb.WriteString("</rdf:RDF>\n</x:xmpmeta>\n")
	// Room for a later in-place edit of the packet, as XMP writers customarily leave.
	for range 8 {
		sb.WriteString(strings.Repeat(" ", 99) + "\n")
	}
	sb.WriteString("<?xpacket end=\"w\"?>")
	return []byte(sb.String())
}

// extensionSchema describes chartscan's properties to PDF/A (ISO 19005-2, 6.6.2.3.3).
var extensionSchema = ` <rdf:Description rdf:about=""
   xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"
   xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"
   xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
  <pdfaExtension:schemas>
   <rdf:Bag>
    <rdf:li rdf:parseType="Resource">
     <pdfaSchema:schema>chartscan patient document</pdfaSchema:schema>
     <pdfaSchema:namespaceURI>` + nsChartscan + `</pdfaSchema:namespaceURI>
     <pdfaSchema:prefix>` + prefixChartscan + `</pdfaSchema:prefix>
     <pdfaSchema:property>
      <rdf:Seq>
       <rdf:li rdf:parseType="Resource">
        <pdfaProperty:name>DocumentType</pdfaProperty:name>
        <pdfaProperty:valueType>Text</pdfaProperty:valueType>
        <pdfaProperty:category>external</pdfaProperty:category>
        <pdfaProperty:description>Kind of clinical document, such as progress note or discharge summary</pdfaProperty:description>
       </rdf:li>
       <rdf:li rdf:parseType="Resource">
        <pdfaProperty:name>DateOfService</pdfaProperty:name>
        <pdfaProperty:valueType>Text</pdfaProperty:valueType>
        <pdfaProperty:category>external</pdfaProperty:category>
        <pdfaProperty:description>Date of the care the document records, ISO 8601</pdfaProperty:description>
       </rdf:li>
       <rdf:li rdf:parseType="Resource">
        <pdfaProperty:name>DocumentID</pdfaProperty:name>
        <pdfaProperty:valueType>Text</pdfaProperty:valueType>
        <pdfaProperty:category>external</pdfaProperty:category>
        <pdfaProperty:description>chartscan's identifier of the patient document</pdfaProperty:description>
       </rdf:li>
      </rdf:Seq>
     </pdfaSchema:property>
    </rdf:li>
   </rdf:Bag>
  </pdfaExtension:schemas>
 </rdf:Description>
`
