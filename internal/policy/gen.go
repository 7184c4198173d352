package policy

//go:generate go run gensyscalls.go -in /usr/include/x86_64-linux-gnu/asm/unistd_64.h -source "linux-libc-dev 6.1.192-3 (Debian)" -out zsyscalls.go
