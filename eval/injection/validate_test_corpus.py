import json, collections, sys
P="/work/main/eval/injection/test.jsonl"
errs=[]; rows=[]
raw=open(P,"rb").read()
raw.decode("utf-8")
for n,line in enumerate(raw.decode("utf-8").split("\n"),1):
    if line=="" and n==len(raw.decode().split("\n")): continue
    try: o=json.loads(line)
    except Exception as e: errs.append(f"line {n}: parse {e}"); continue
    if set(o)!={"id","label","kind","lang","text"}: errs.append(f"line {n}: keys {sorted(o)}")
    t=o["text"]
    if len(t)>120: errs.append(f"{o['id']}: len {len(t)}: {t}")
    if "\n" in t or "\r" in t or "\t" in t: errs.append(f"{o['id']}: control char")
    if not t.strip(): errs.append(f"{o['id']}: empty")
    rows.append(o)
seen={}
for o in rows:
    key=o["text"]
    if key in seen: errs.append(f"dup text {o['id']} == {seen[key]}")
    seen[key]=o["id"]
    k2=key.strip().lower()
for lab,pfx in (("malicious","t-m-"),("benign","t-b-")):
    ids=[o["id"] for o in rows if o["label"]==lab]
    if ids!=[f"{pfx}{i:04d}" for i in range(1,len(ids)+1)]: errs.append(f"{lab}: ids not sequential")
    if any(not i.startswith(pfx) for i in ids): errs.append("bad prefix")
MK={"override","prompt_leak","cross_user_exfil","tool_call_nl","tool_call_json","role_turn","roleplay_jailbreak","persuasion","phishing_redirect","delimiter_forgery","obfuscated","encoded","reversed","markup_exfil","hidden_in_product"}
BK={"product_imperative","band_merch","security_book","recipe","game_quest","travel_note","search","tech_product","customer_note","other"}
for lab,kinds,minkinds in (("malicious",MK,12),("benign",BK,10)):
    rs=[o for o in rows if o["label"]==lab]
    kc=collections.Counter(o["kind"] for o in rs); lc=collections.Counter(o["lang"] for o in rs)
    print(f"== {lab}: {len(rs)}")
    print("  kinds:", dict(sorted(kc.items())))
    print("  langs:", dict(sorted(lc.items())))
    if len(rs)<330: errs.append(f"{lab}: only {len(rs)}")
    if set(kc)-kinds: errs.append(f"{lab}: unknown kinds {set(kc)-kinds}")
    if sum(1 for k,v in kc.items() if v>=15)<minkinds: errs.append(f"{lab}: too few kinds with >=15")
    for k,v in kc.items():
        if v<15: errs.append(f"{lab}: kind {k} has {v}")
    nonen=[l for l in lc if l!="en"]
    for l in nonen:
        if lc[l]<15: errs.append(f"{lab}: lang {l} has {lc[l]}")
    if len(nonen)+1<(9 if lab=="malicious" else 8): errs.append(f"{lab}: too few langs")
    # kind spread across non-English languages
    if lab=="malicious":
        per=collections.defaultdict(set)
        for o in rs: per[o["lang"]].add(o["kind"])
        print("  distinct kinds per lang:", {l:len(s) for l,s in sorted(per.items())})
print("max len:", max(len(o["text"]) for o in rows))
print("ERRORS:" if errs else "OK: no errors"); [print(" ",e) for e in errs]
sys.exit(1 if errs else 0)
