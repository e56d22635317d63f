// Package indexer turns the text read from a page into patient identifiers, reads EMPI
// exports, and decides which patient each page of a document is filed to.
package indexer
