package server

import "net/http"

func (s *Server) graphQLHandler() http.Handler { return http.NotFoundHandler() }

func (s *Server) playgroundHandler() http.Handler { return http.NotFoundHandler() }
