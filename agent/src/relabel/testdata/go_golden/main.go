// Reference outputs from Go's regexp for the relabel conformance test; see gen.py.
package main

import (
	"bufio"
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

type meta struct {
	Inputs   []string `json:"inputs"`
	Template string   `json:"template"`
	Cases    []string `json:"cases"`
}

func main() {
	var m meta
	b, _ := os.ReadFile("meta.json")
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	hdr, _ := json.Marshal(map[string]any{"inputs": m.Inputs, "template": m.Template})
	fmt.Fprintln(out, string(hdr))
	f, _ := os.Open("in.jsonl")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c struct{ P string `json:"p"` }
		json.Unmarshal(sc.Bytes(), &c)
		re, err := regexp.Compile("^(?s:" + c.P + ")$")
		line := map[string]any{"p": c.P}
		if err != nil {
			line["err"] = err.Error()
		} else {
			res := make([]any, len(m.Inputs))
			for i, in := range m.Inputs {
				idx := re.FindStringSubmatchIndex(in)
				if idx == nil {
					res[i] = nil
				} else {
					res[i] = string(re.ExpandString(nil, m.Template, in, idx))
				}
			}
			line["r"] = res
		}
		j, _ := json.Marshal(line)
		fmt.Fprintln(out, string(j))
	}
	for _, s := range m.Cases {
		sum := md5.Sum([]byte(s))
		j, _ := json.Marshal(map[string]any{"case": s, "lower": strings.ToLower(s), "upper": strings.ToUpper(s), "hashmod1000": binary.BigEndian.Uint64(sum[8:]) % 1000})
		fmt.Fprintln(out, string(j))
	}
}
