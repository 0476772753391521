package main

import (
	"strings"
	"testing"
)

func TestParseGraphQLCountsDistinctMembers(t *testing.T) {
	var h hit
	parseGraphQL([]byte(`{"data":{"members":{"edges":[{"node":{"id":"a"}},{"node":{"id":"b"}},{"node":{"id":"a"}}]},
		"member":{"id":"c"}},"errors":[{"message":"x","extensions":{"code":"FORBIDDEN"}}]}`), &h)
	if !h.hasData || strings.Join(h.members, ",") != "c,a,b" || strings.Join(h.gqlCodes, ",") != "FORBIDDEN" {
		t.Fatalf("got %+v", h)
	}
	h = hit{}
	parseGraphQL([]byte(`{"data":{"member":null},"errors":[{"message":"x","extensions":{"code":"NOT_FOUND"}}]}`), &h)
	if !h.hasData || len(h.members) != 0 {
		t.Fatalf("got %+v", h)
	}
	h = hit{}
	parseGraphQL([]byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}],"data":null}`), &h)
	if h.hasData || len(h.members) != 0 {
		t.Fatalf("got %+v", h)
	}
}

func TestCheckNDJSON(t *testing.T) {
	three := 3
	f := FileCheck{Type: "Patient", Kind: "output", Count: &three}
	good := "{\"resourceType\":\"Patient\",\"id\":\"1\"}\n{\"resourceType\":\"Patient\",\"id\":\"2\"}\n{\"resourceType\":\"Patient\",\"id\":\"3\"}\n"
	if n, problem := checkNDJSON([]byte(good), f, map[string]bool{}); n != 3 || problem != "" {
		t.Fatalf("good file: %d lines, %q", n, problem)
	}
	for name, body := range map[string]string{
		"truncated":  good[:len(good)-10],
		"short":      good[:strings.Index(good, "\n")+1],
		"duplicate":  strings.Replace(good, `"id":"3"`, `"id":"1"`, 1),
		"wrong type": strings.Replace(good, `"Patient","id":"2"`, `"Coverage","id":"2"`, 1),
		"unparsable": strings.Replace(good, `}`, ``, 1),
	} {
		if _, problem := checkNDJSON([]byte(body), f, map[string]bool{}); problem == "" {
			t.Errorf("%s file passed", name)
		}
	}
}
