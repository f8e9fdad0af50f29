import { Link } from "react-router";
import { PageHeader } from "../components/ui";

export default function NotFound() {
  return (
    <>
      <PageHeader title="Page not found" />
      <p>
        Nothing lives at this address. Go back to the <Link to="/">dashboard</Link>.
      </p>
    </>
  );
}
