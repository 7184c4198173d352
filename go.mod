module github.com/wardsec/ward

go 1.26
