package main

import "errors"

func e2eCmd(args []string) error     { return errors.New("todo") }
func backlogCmd(args []string) error { return errors.New("todo") }
