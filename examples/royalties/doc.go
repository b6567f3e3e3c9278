// Package royalties is the reference application: a music rights company
// that receives catalog entries, ownership claims, royalty rates and
// usage reports from streaming platforms, and pays rights holders.
package royalties
