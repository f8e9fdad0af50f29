import { useState, type FormEvent } from "react";
import { Navigate, useLocation, useNavigate } from "react-router";
import { call, client } from "../api/client";
import { ErrorText, Field, fieldError } from "../components/ui";
import { useAction } from "../hooks";
import { useSession } from "../session";

export default function SignIn() {
  const { me, refresh } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const action = useAction();
  const from = (location.state as { from?: string } | null)?.from ?? "/";
  if (me) return <Navigate to={from} replace />;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const done = await action.run(() =>
      call(client.POST("/auth/login", { body: { email, password } })),
    );
    if (done) {
      await refresh();
      navigate(from, { replace: true });
    }
  };

  return (
    <main className="sign-in" id="main">
      <form onSubmit={submit} className="card narrow" aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">Sign in to Clarion</h1>
        <Field label="Email" error={fieldError(action.error, "email")}>
          {(props) => (
            <input
              {...props}
              type="email"
              autoComplete="username"
              required
              value={email}
              onChange={(e) => setEmail(e.target.value)}
            />
          )}
        </Field>
        <Field label="Password" error={fieldError(action.error, "password")}>
          {(props) => (
            <input
              {...props}
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          )}
        </Field>
        <button type="submit" className="primary" disabled={action.busy}>
          Sign in
        </button>
        <ErrorText error={action.error} />
      </form>
    </main>
  );
}
